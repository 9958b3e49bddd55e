//! The stored JSON (an event's, an action's plan, a local record's data),
//! compressed when that pays.
//!
//! An event's JSON is most of its row (about 1,500 bytes for a 1 KB event),
//! and SQLite writes each row twice (the WAL, then the checkpoint) after the
//! intake journal wrote it once. Each is compressed once, on the request's
//! thread, for the journal and the table alike: with zstd at level 1, and
//! with the store's trained dictionary once it has one (see `dictionary`).
//! Short texts stay as they are (under 256 bytes, or 64 once there is a
//! dictionary). A column holds TEXT (plain JSON, as older rows
//! and rejected requests have it) or a BLOB (a zstd frame of that JSON,
//! naming its dictionary if it has one), so reading needs no migration.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use super::dictionary::{self, Dictionaries};
use crate::StoreError;

/// Below this, compression without a dictionary saves too little to pay
/// for itself.
const PACK_FROM_BYTES: usize = 256;

/// Below this, not even compression with a dictionary pays. With one, a
/// short text of a familiar shape shrinks to a fraction (a trigger's plan
/// that leaves its data to the event: about 250 bytes, under 30 packed).
const PACK_WITH_DICTIONARY_FROM_BYTES: usize = 64;

/// A stored JSON that decompresses to more than this is refused rather than
/// allocated (a damaged or foreign row): the largest event is far smaller.
const MAX_UNPACKED_BYTES: usize = 64 << 20;

/// A JSON text as the SQLite store writes it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum PackedJson {
    /// As it is.
    Text(String),
    /// A zstd frame of it.
    Zstd(Vec<u8>),
}

impl PackedJson {
    /// `json`, compressed if it is long enough and compression shrinks it;
    /// with `dictionaries`' current dictionary, which may sample it.
    pub(super) fn pack(json: String, dictionaries: &Dictionaries) -> Self {
        if json.len() < PACK_WITH_DICTIONARY_FROM_BYTES {
            return Self::Text(json);
        }
        // Short texts are sampled too, so a dictionary learns their shape.
        dictionaries.sample(&json);
        let encoder = dictionaries.encoder();
        if encoder.is_none() && json.len() < PACK_FROM_BYTES {
            return Self::Text(json);
        }
        match dictionary::compress(json.as_bytes(), encoder.as_deref()) {
            Some(bytes) if bytes.len() < json.len() => Self::Zstd(bytes),
            _ => Self::Text(json),
        }
    }

    /// The JSON text; `field` names the column in an error.
    pub(super) fn unpack(&self, field: &'static str) -> Result<String, StoreError> {
        match self {
            Self::Text(s) => Ok(s.clone()),
            Self::Zstd(b) => {
                let bytes = dictionary::decompress(b, MAX_UNPACKED_BYTES)
                    .map_err(|e| StoreError::decode(field, e))?;
                String::from_utf8(bytes).map_err(|e| StoreError::decode(field, e))
            }
        }
    }
}

impl ToSql for PackedJson {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Self::Zstd(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// A JSON column as stored, not yet decompressed.
impl FromSql for PackedJson {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Blob(b) => Ok(Self::Zstd(b.to_vec())),
            other => String::column_result(other).map(Self::Text),
        }
    }
}

/// A JSON column read back: plain or packed, as text.
pub(super) struct StoredJson(pub(super) String);

impl FromSql for StoredJson {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Blob(b) => {
                let bytes = dictionary::decompress(b, MAX_UNPACKED_BYTES)
                    .map_err(|e| FromSqlError::Other(e.into()))?;
                String::from_utf8(bytes)
                    .map(Self)
                    .map_err(|e| FromSqlError::Other(Box::new(e)))
            }
            other => String::column_result(other).map(Self),
        }
    }
}

/// An optional JSON column as text.
pub(super) fn stored_json(value: Option<StoredJson>) -> Option<String> {
    value.map(|v| v.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(json: &str) -> String {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (j TEXT)").unwrap();
        conn.execute(
            "INSERT INTO t (j) VALUES (?1)",
            [PackedJson::pack(json.to_owned(), &Dictionaries::none())],
        )
        .unwrap();
        conn.query_row("SELECT j FROM t", [], |r| r.get::<_, StoredJson>(0))
            .unwrap()
            .0
    }

    #[test]
    fn long_json_is_packed_and_reads_back_the_same() {
        let json = format!(r#"{{"properties":{{"pad":"{}"}}}}"#, "abc".repeat(400));
        assert!(
            matches!(PackedJson::pack(json.clone(), &Dictionaries::none()), PackedJson::Zstd(b) if b.len() < json.len())
        );
        assert_eq!(round_trip(&json), json);
    }

    #[test]
    fn short_json_stays_text() {
        assert!(matches!(
            PackedJson::pack("{}".into(), &Dictionaries::none()),
            PackedJson::Text(_)
        ));
        assert_eq!(round_trip("{}"), "{}");
    }

    #[test]
    fn a_damaged_blob_is_an_error_not_a_panic() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (j TEXT); INSERT INTO t VALUES (x'28b52ffd00ff')")
            .unwrap();
        assert!(
            conn.query_row("SELECT j FROM t", [], |r| r.get::<_, StoredJson>(0))
                .is_err()
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_round_trips(text in ".{0,2000}") {
            proptest::prop_assert_eq!(round_trip(&text), text);
        }

        #[test]
        fn any_blob_reads_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let conn = rusqlite::Connection::open_in_memory().unwrap();
            conn.execute_batch("CREATE TABLE t (j TEXT)").unwrap();
            conn.execute("INSERT INTO t (j) VALUES (?1)", [&bytes]).unwrap();
            let _ = conn.query_row("SELECT j FROM t", [], |r| r.get::<_, StoredJson>(0));
        }
    }
}
