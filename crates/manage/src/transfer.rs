//! The stored sources as configuration-file text, and back: `config export`
//! and `config import`. Exported text is `[[sources]]` tables with every
//! value as stored (secrets in full: it is configuration), and importing it
//! makes the stored sources exactly what it lists, as one revision.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use tributary_core::config::{
    DocumentError, SourceDocument, source_documents, source_from_document, sources_toml,
};
use tributary_pipeline::Origin;
use tributary_store::{NewRevision, StoreError};

use crate::{
    ManageError, Manager,
    diff::{Change, diff},
};

/// What an import does (or, dry, would do) to one source.
#[derive(Clone, Debug, Serialize)]
pub struct ImportStep {
    /// The source key.
    pub key: String,
    /// `create`, `update`, `delete`, `unchanged`, or `skipped` (defined in
    /// the configuration file, which the file manages).
    pub action: &'static str,
    /// What changes, secrets masked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

/// An import's plan, and the revision it made (none on a dry run or when
/// nothing changes).
#[derive(Clone, Debug, Serialize)]
pub struct Import {
    /// One step per source named by the text or stored now.
    pub steps: Vec<ImportStep>,
    /// The revision made.
    pub revision: Option<u64>,
}

/// How many times an import is re-planned when other changes commit first.
const IMPORT_ATTEMPTS: usize = 8;

impl Manager {
    /// The stored sources as `[[sources]]` tables, in key order, with a
    /// header naming the revision.
    pub async fn export(&self) -> Result<String, ManageError> {
        self.pipeline.refresh_live().await?;
        let live = self.pipeline.live();
        let documents: Vec<SourceDocument> = live
            .sources()
            .filter_map(|s| match &s.origin {
                Origin::Store { document, .. } => Some(document.clone()),
                Origin::File => None,
            })
            .collect();
        let body = sources_toml(&documents).map_err(|e| ManageError::invalid("", e))?;
        Ok(format!(
            "# Sources made through the management API, at configuration revision {}.\n\
             # `tributary-ingest config import` of this text gives the same sources back.\n\
             {body}",
            live.revision()
        ))
    }

    /// Makes the stored sources exactly those `text`'s `[[sources]]` list
    /// (sources the configuration file defines are skipped), as one
    /// revision; with `dry_run`, only says what would change. Every source
    /// is validated as a change through the API would be; one invalid source
    /// refuses the whole import, its errors pointing at `/sources/<n>/...`.
    pub async fn import(
        &self,
        actor: &str,
        text: &str,
        dry_run: bool,
    ) -> Result<Import, ManageError> {
        let incoming = source_documents(text).map_err(|e| ManageError::invalid("", e))?;
        let mut wanted: BTreeMap<String, SourceDocument> = BTreeMap::new();
        let mut errors = Vec::new();
        let mut skipped = Vec::new();
        for (i, doc) in incoming.into_iter().enumerate() {
            let Some(key) = doc.get("key").and_then(Value::as_str).map(str::to_owned) else {
                errors.push(DocumentError {
                    pointer: format!("/sources/{i}/key"),
                    message: "is required".into(),
                });
                continue;
            };
            if self.file_documents.contains_key(&key) {
                skipped.push(key);
                continue;
            }
            match source_from_document(
                &Value::Object(doc.clone()),
                &self.pipeline.config().environments,
            ) {
                Ok(source) => {
                    errors.extend(self.script_errors(&source, &format!("/sources/{i}")).await);
                }
                Err(errs) => errors.extend(errs.into_iter().map(|mut e| {
                    e.pointer = format!("/sources/{i}{}", e.pointer);
                    e
                })),
            }
            if wanted.insert(key.clone(), doc).is_some() {
                errors.push(DocumentError {
                    pointer: format!("/sources/{i}/key"),
                    message: format!("duplicate source key `{key}`"),
                });
            }
        }
        if !errors.is_empty() {
            return Err(ManageError::Invalid(errors));
        }
        for _ in 0..IMPORT_ATTEMPTS {
            self.pipeline.refresh_live().await?;
            let live = self.pipeline.live();
            let stored: BTreeMap<String, SourceDocument> = live
                .sources()
                .filter_map(|s| match &s.origin {
                    Origin::Store { document, .. } => {
                        Some((s.config.key.clone(), document.clone()))
                    }
                    Origin::File => None,
                })
                .collect();
            let mut steps = Vec::new();
            let mut writes = Vec::new();
            for key in stored
                .keys()
                .chain(wanted.keys())
                .collect::<std::collections::BTreeSet<_>>()
            {
                let before = stored.get(key).cloned().map(Value::Object);
                let after = wanted.get(key).cloned().map(Value::Object);
                let changes = diff(before.as_ref(), after.as_ref());
                let action = match (&before, &after) {
                    (None, Some(_)) => "create",
                    (Some(_), None) => "delete",
                    _ if changes.is_empty() => "unchanged",
                    _ => "update",
                };
                if action != "unchanged" {
                    let text = wanted.get(key).map(|d| self.stored_text(d));
                    writes.push((key.clone(), text));
                }
                steps.push(ImportStep {
                    key: key.clone(),
                    action,
                    changes,
                });
            }
            steps.extend(skipped.iter().map(|key| ImportStep {
                key: key.clone(),
                action: "skipped",
                changes: Vec::new(),
            }));
            self.check_credentials(&live, &wanted)?;
            if dry_run || writes.is_empty() {
                return Ok(Import {
                    steps,
                    revision: None,
                });
            }
            let revision = NewRevision {
                actor: actor.to_owned(),
                summary: format!("import {} source changes", writes.len()),
                changes: json!(
                    steps
                        .iter()
                        .filter(|s| s.action != "unchanged" && s.action != "skipped")
                        .collect::<Vec<_>>()
                ),
                sources: writes,
            };
            let Some(committed) = self.commit_and_serve(live.revision(), revision).await? else {
                continue;
            };
            tracing::info!(
                actor,
                revision = committed.number,
                "Configuration imported."
            );
            return Ok(Import {
                steps,
                revision: Some(committed.number),
            });
        }
        Err(StoreError::Conflict("configuration changes kept colliding".into()).into())
    }

    /// No two source environments of the file's sources and `wanted` share
    /// a token, write key or API key.
    fn check_credentials(
        &self,
        live: &tributary_pipeline::LiveConfig,
        wanted: &BTreeMap<String, SourceDocument>,
    ) -> Result<(), ManageError> {
        let mut compiled = Vec::new();
        for doc in wanted.values() {
            compiled.push(
                source_from_document(
                    &Value::Object(doc.clone()),
                    &self.pipeline.config().environments,
                )
                .map_err(ManageError::Invalid)?,
            );
        }
        let file = live
            .sources()
            .filter(|s| s.origin == Origin::File)
            .map(|s| &s.config);
        let mut seen: BTreeMap<(&'static str, &str), String> = BTreeMap::new();
        for source in file.chain(compiled.iter()) {
            for (slug, se) in &source.environments {
                for (what, value) in crate::manager::credentials(se) {
                    let here = format!("{}/{slug}", source.key);
                    if let Some(first) = seen.insert((what, value), here.clone())
                        && first != here
                    {
                        return Err(ManageError::Conflict {
                            pointer: String::new(),
                            message: format!("{here} and {first} have the same {what}"),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
