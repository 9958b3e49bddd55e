//! Compression dictionaries trained on the store's own JSON.
//!
//! zstd alone shrinks a 1.5 KB event JSON to about 55%: one event is too
//! little text for it to find repeats in. The events a store receives share
//! most of their text (field names, the sending library's context, the
//! plan a mapping makes), and a dictionary trained on a sample of them lets
//! each compressed text refer to that shared part instead of carrying it
//! (docs/PERFORMANCE.md, issue 19: a benchmark event's JSON, 1,483 bytes,
//! took 826 compressed alone, 119 with a dictionary trained on its
//! neighbours, and 532 with a hand-written generic Segment-shaped one).
//!
//! How a store gets one ([`Dictionaries`]): while it has none, or its newest
//! is older than [`DictionaryOptions::max_age`], the texts it packs are
//! sampled on the request threads; once there are enough, a thread of its
//! own trains a dictionary on them and keeps it only if it shrinks the
//! samples by at least a tenth. The next append installs it: its row in
//! `json_dictionaries` is committed with an fsync first, so no compressed
//! text can reach the disk (the intake journal, or a table) without the
//! dictionary it needs, and only then do the packers switch to it.
//!
//! How a text is read back: a zstd frame names the dictionary it was made
//! with (an id zstd's trainer derives from the dictionary's content). A
//! column is decoded where only the row is at hand (rusqlite's `FromSql`),
//! so the decoders live in one table for the process, keyed by that id;
//! each store adds its dictionaries to it at open and at install.
//! Dictionaries are never deleted: a store trains at most one per
//! `max_age`, of [`DICTIONARY_BYTES`] each.

use std::{
    cell::RefCell,
    collections::HashMap,
    sync::{
        Arc, LazyLock, Mutex, RwLock,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use rusqlite::{Connection, params};
use zstd::zstd_safe::{self, CCtx, CDict, DCtx, DDict};

use crate::StoreError;

/// The size of a trained dictionary. Small texts gain little from more:
/// on the benchmark's events 8, 16 and 32 KiB left 130, 119 and 125 bytes.
const DICTIONARY_BYTES: usize = 16 * 1024;

/// At most this much sampled text is held while a store samples.
const MAX_SAMPLE_BYTES: usize = 8 << 20;

/// zstd's fastest level: the point is fewer bytes for little CPU.
const LEVEL: i32 = 1;

/// A dictionary is kept only if the samples packed with it take at most
/// this share (in tenths) of what they take without one.
const KEEP_AT_MOST_TENTHS: usize = 9;

/// When a store trains a dictionary for its JSON.
#[derive(Clone, Debug)]
pub struct DictionaryOptions {
    /// How many texts to sample before training (texts long enough to be
    /// compressed: events and action plans). Zero: never train.
    pub samples: usize,
    /// A store whose newest dictionary is older than this trains another,
    /// so a change in what it receives (a new source, new fields) is
    /// followed.
    pub max_age: Duration,
}

impl Default for DictionaryOptions {
    fn default() -> Self {
        Self {
            samples: 2_000,
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// A dictionary ready to compress with.
pub(super) struct Encoder {
    cdict: CDict<'static>,
}

/// A dictionary to decompress with, and its bytes (to tell a different
/// dictionary with the same id apart).
struct Decoder {
    ddict: DDict<'static>,
    bytes: Arc<[u8]>,
}

/// Every dictionary a store of this process has loaded, by zstd id.
static DECODERS: LazyLock<RwLock<HashMap<u32, Arc<Decoder>>>> = LazyLock::new(Default::default);

thread_local! {
    /// Each thread's contexts, reused: a new context per text costs more
    /// than compressing it.
    static CCTX: RefCell<CCtx<'static>> = RefCell::new(CCtx::create());
    static DCTX: RefCell<DCtx<'static>> = RefCell::new(DCtx::create());
}

/// Adds `bytes` to the process's decoders; false when a different
/// dictionary already has its id (it then cannot be used).
fn register(id: u32, bytes: &[u8]) -> bool {
    let mut decoders = DECODERS.write().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = decoders.get(&id) {
        return *known.bytes == *bytes;
    }
    decoders.insert(
        id,
        Arc::new(Decoder {
            ddict: DDict::create(bytes),
            bytes: bytes.into(),
        }),
    );
    true
}

/// `text` as one zstd frame, with `encoder`'s dictionary when given; `None`
/// when zstd fails.
pub(super) fn compress(text: &[u8], encoder: Option<&Encoder>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(zstd_safe::compress_bound(text.len()));
    CCTX.with(|c| {
        let mut c = c.borrow_mut();
        match encoder {
            Some(e) => c.compress_using_cdict(&mut out, text, &e.cdict),
            None => c.compress(&mut out, text, LEVEL),
        }
    })
    .ok()?;
    Some(out)
}

/// The text in a zstd frame, decompressed with the dictionary it names.
/// Refuses a frame that would decompress to more than `max` bytes.
pub(super) fn decompress(frame: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let Some(id) = zstd_safe::get_dict_id_from_frame(frame) else {
        return zstd::bulk::decompress(frame, max).map_err(|e| e.to_string());
    };
    let decoder = DECODERS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id.get())
        .cloned()
        .ok_or_else(|| format!("compressed with dictionary {id}, which the store does not hold"))?;
    let size = match zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) if n <= max as u64 => n as usize,
        Ok(Some(n)) => return Err(format!("decompresses to {n} bytes, over {max}")),
        _ => return Err("not a zstd frame with its size".to_owned()),
    };
    let mut out = Vec::with_capacity(size);
    DCTX.with(|d| {
        d.borrow_mut()
            .decompress_using_ddict(&mut out, frame, &decoder.ddict)
    })
    .map_err(|code| zstd_safe::get_error_name(code).to_owned())?;
    Ok(out)
}

/// Where sampling stands.
#[derive(Default)]
struct Samples {
    texts: Vec<Vec<u8>>,
    bytes: usize,
}

/// A trained dictionary waiting to be installed.
pub(super) struct Trained {
    pub(super) id: u32,
    pub(super) bytes: Vec<u8>,
}

/// A store's dictionaries: the one its packers use, and the training of
/// the next (see the module docs).
pub(super) struct Dictionaries {
    options: DictionaryOptions,
    current: RwLock<Option<Arc<Encoder>>>,
    sampling: AtomicBool,
    samples: Mutex<Samples>,
    trained: Arc<Mutex<Option<Trained>>>,
    /// When (ms) to start sampling again; `i64::MAX` while sampling or
    /// training.
    next_training_ms: Arc<AtomicI64>,
}

impl Dictionaries {
    /// Loads the store's dictionaries into the process's decoders and
    /// packs with the newest; samples at once if a new one is due.
    pub(super) fn open(
        conn: &Connection,
        options: DictionaryOptions,
        now_ms: i64,
    ) -> Result<Self, StoreError> {
        let mut newest: Option<(i64, u32, Vec<u8>)> = None;
        let mut stmt = conn.prepare(
            "SELECT id, created_at, dictionary FROM json_dictionaries ORDER BY created_at, id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (id, created, bytes): (i64, i64, Vec<u8>) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let id = u32::try_from(id).map_err(|_| {
                StoreError::decode(
                    "json_dictionaries.id",
                    format!("{id} is not a zstd dictionary id"),
                )
            })?;
            if !register(id, &bytes) {
                tracing::error!(
                    dictionary = id,
                    "Another store in this process has a different dictionary with this id; texts compressed with this store's cannot be read."
                );
                continue;
            }
            newest = Some((created, id, bytes));
        }
        let dictionaries = Self::new(options, now_ms);
        if let Some((created, _, bytes)) = newest {
            dictionaries.use_dictionary(&bytes, created);
        }
        dictionaries.start_sampling_if_due(now_ms);
        Ok(dictionaries)
    }

    /// No dictionary yet; sampling starts at the first call of
    /// [`Dictionaries::start_sampling_if_due`] at or after `next_training_ms`.
    fn new(options: DictionaryOptions, next_training_ms: i64) -> Self {
        Self {
            options,
            current: RwLock::new(None),
            sampling: AtomicBool::new(false),
            samples: Mutex::new(Samples::default()),
            trained: Arc::default(),
            next_training_ms: Arc::new(AtomicI64::new(next_training_ms)),
        }
    }

    /// No dictionary, and none trained.
    #[cfg(test)]
    pub(super) fn none() -> Self {
        let never = DictionaryOptions {
            samples: 0,
            max_age: Duration::MAX,
        };
        Self::new(never, i64::MAX)
    }

    fn use_dictionary(&self, bytes: &[u8], created_ms: i64) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Encoder {
            cdict: CDict::create(bytes, LEVEL),
        }));
        self.retry_later(created_ms);
    }

    /// The dictionary to pack with, if any.
    pub(super) fn encoder(&self) -> Option<Arc<Encoder>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Starts sampling when a new dictionary is due at `now_ms`: cheap
    /// enough to ask on every append.
    pub(super) fn start_sampling_if_due(&self, now_ms: i64) {
        if self.options.samples == 0 || now_ms < self.next_training_ms.load(Ordering::Relaxed) {
            return;
        }
        // One caller wins; the others see the new time.
        let due = self.next_training_ms.load(Ordering::SeqCst);
        if now_ms >= due
            && self
                .next_training_ms
                .compare_exchange(due, i64::MAX, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            tracing::debug!("Sampling the stored JSON to train a compression dictionary.");
            self.sampling.store(true, Ordering::SeqCst);
        }
    }

    /// Keeps a copy of `text` while sampling; the sample that completes the
    /// set starts the training.
    pub(super) fn sample(&self, text: &str) {
        if !self.sampling.load(Ordering::Relaxed) {
            return;
        }
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if !self.sampling.load(Ordering::Relaxed) {
            return;
        }
        samples.bytes += text.len();
        samples.texts.push(text.as_bytes().to_vec());
        if samples.texts.len() < self.options.samples && samples.bytes < MAX_SAMPLE_BYTES {
            return;
        }
        self.sampling.store(false, Ordering::SeqCst);
        let texts = std::mem::take(&mut *samples).texts;
        drop(samples);
        let slot = Arc::clone(&self.trained);
        let next = Arc::clone(&self.next_training_ms);
        let max_age = self.options.max_age;
        let spawned = std::thread::Builder::new()
            .name("json-dictionary".to_owned())
            .spawn(move || match train(&texts) {
                Ok(trained) => *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(trained),
                Err(why) => {
                    tracing::info!(
                        samples = texts.len(),
                        reason = %why,
                        "No compression dictionary kept for the stored JSON; sampling again later."
                    );
                    let now = chrono::Utc::now().timestamp_millis();
                    sample_again_after(&next, max_age, now);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "Cannot start training a compression dictionary.");
            self.retry_later(chrono::Utc::now().timestamp_millis());
        }
    }

    /// A trained dictionary to install, once.
    pub(super) fn take_trained(&self) -> Option<Trained> {
        self.trained
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Packs with `trained` from now on: call once its row is durable.
    pub(super) fn install(&self, trained: &Trained, created_ms: i64) {
        if register(trained.id, &trained.bytes) {
            self.use_dictionary(&trained.bytes, created_ms);
            tracing::info!(
                dictionary = trained.id,
                "Compressing the stored JSON with a newly trained dictionary."
            );
        } else {
            tracing::warn!(
                dictionary = trained.id,
                "A different dictionary has the new one's id; keeping the old one."
            );
            self.retry_later(created_ms);
        }
    }

    /// Samples again `max_age` after `now_ms` (a dictionary installed, or
    /// one not kept or not stored).
    pub(super) fn retry_later(&self, now_ms: i64) {
        sample_again_after(&self.next_training_ms, self.options.max_age, now_ms);
    }
}

/// Sets when sampling starts again: `max_age` after `now_ms`.
fn sample_again_after(next_training_ms: &AtomicI64, max_age: Duration, now_ms: i64) {
    let age = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    next_training_ms.store(now_ms.saturating_add(age), Ordering::SeqCst);
}

/// Stores `trained` in the open transaction (the caller's write commits
/// it with an fsync before anything is packed with it).
pub(super) fn insert(
    conn: &Connection,
    trained: &Trained,
    created_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO json_dictionaries (id, created_at, dictionary) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![i64::from(trained.id), created_ms, trained.bytes])?;
    Ok(())
}

/// A dictionary trained on `samples`, if it pays (see [`KEEP_AT_MOST_TENTHS`]).
fn train(samples: &[Vec<u8>]) -> Result<Trained, String> {
    let bytes = zstd::dict::from_samples(samples, DICTIONARY_BYTES).map_err(|e| e.to_string())?;
    let id = zstd_safe::get_dict_id(&bytes)
        .ok_or("the trained dictionary has no id")?
        .get();
    let encoder = Encoder {
        cdict: CDict::create(&bytes, LEVEL),
    };
    let size = |e: Option<&Encoder>| -> Result<usize, String> {
        samples.iter().try_fold(0, |sum, s| {
            compress(s, e)
                .map(|c| sum + c.len())
                .ok_or_else(|| "zstd failed on a sample".to_owned())
        })
    };
    let (without, with) = (size(None)?, size(Some(&encoder))?);
    if with * 10 > without * KEEP_AT_MOST_TENTHS {
        return Err(format!(
            "it packs the samples to {with} bytes against {without} without one"
        ));
    }
    tracing::debug!(
        dictionary = id,
        without,
        with,
        "Trained a compression dictionary."
    );
    Ok(Trained { id, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts shaped like one source's events, each with its own values.
    fn events(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                format!(
                    r#"{{"type":"track","event":"Order Completed","userId":"user-{i}","messageId":"msg-{i:08}","context":{{"library":{{"name":"analytics-node","version":"1.3.{}"}},"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36","ip":"198.51.100.{}"}},"properties":{{"order_id":"ord-{i}","total":{}.{},"currency":"EUR","coupon":"C{}"}}}}"#,
                    i % 7,
                    i % 250,
                    i * 13 % 997,
                    i % 100,
                    i % 31
                )
            })
            .collect()
    }

    #[test]
    fn a_trained_dictionary_shrinks_texts_of_the_same_shape_and_reads_them_back() {
        let samples: Vec<Vec<u8>> = events(500).into_iter().map(String::into_bytes).collect();
        let trained = train(&samples).expect("the samples share most of their text");
        assert!(register(trained.id, &trained.bytes));
        let encoder = Encoder {
            cdict: CDict::create(&trained.bytes, LEVEL),
        };
        let text = events(1001).pop().unwrap();
        let plain = compress(text.as_bytes(), None).unwrap();
        let packed = compress(text.as_bytes(), Some(&encoder)).unwrap();
        assert!(
            packed.len() * 2 < plain.len(),
            "{} bytes with the dictionary, {} without",
            packed.len(),
            plain.len()
        );
        assert_eq!(
            zstd_safe::get_dict_id_from_frame(&packed).map(|id| id.get()),
            Some(trained.id)
        );
        assert_eq!(decompress(&packed, 1 << 20).unwrap(), text.as_bytes());
        assert_eq!(decompress(&plain, 1 << 20).unwrap(), text.as_bytes());
        assert!(decompress(&packed, 10).is_err(), "the size bound holds");
    }

    /// Unrelated texts: nothing shared to learn.
    fn noise(n: usize) -> Vec<Vec<u8>> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..n)
            .map(|_| {
                (0..300)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 56) as u8
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_dictionary_that_does_not_pay_is_not_kept() {
        assert!(train(&noise(400)).is_err());
    }

    #[test]
    fn a_store_whose_training_failed_samples_again_after_max_age() {
        let now = chrono::Utc::now().timestamp_millis();
        let options = DictionaryOptions {
            samples: 100,
            max_age: Duration::from_secs(3_600),
        };
        let dictionaries = Dictionaries::new(options, now);
        dictionaries.start_sampling_if_due(now);
        // Far too little text to train on: the trainer gives up.
        for n in 0..100 {
            dictionaries.sample(&format!("{n}"));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while dictionaries.next_training_ms.load(Ordering::SeqCst) == i64::MAX {
            assert!(
                std::time::Instant::now() < deadline,
                "the training never ended"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(dictionaries.take_trained().is_none());
        let next = dictionaries.next_training_ms.load(Ordering::SeqCst);
        assert!(
            next >= now + 3_600_000,
            "sampling again at {next}, now {now}"
        );
        assert!(!dictionaries.sampling.load(Ordering::SeqCst));
    }

    #[test]
    fn a_frame_naming_an_unknown_dictionary_is_an_error() {
        let samples: Vec<Vec<u8>> = events(300).into_iter().map(String::into_bytes).collect();
        let mut bytes = zstd::dict::from_samples(&samples, DICTIONARY_BYTES).unwrap();
        // After the magic number, the id: one no store registers.
        bytes[4..8].copy_from_slice(&0x7fff_fff0_u32.to_le_bytes());
        let unregistered = Encoder {
            cdict: CDict::create(&bytes, LEVEL),
        };
        let frame = compress(events(1).pop().unwrap().as_bytes(), Some(&unregistered)).unwrap();
        let err = decompress(&frame, 1 << 20).unwrap_err();
        assert!(err.contains("does not hold"), "{err}");
    }
}
