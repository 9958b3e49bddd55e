//! The repository stands alone: a reader can open every document the code and the docs cite.
//!
//! The decisions the code relies on live in docs/ (docs/product-decisions.md for what Tributary
//! promises, docs/platform-payloads.md for what the platforms send and what Knock's API takes). The
//! research notes they were written from stay outside the repository, so nothing here may cite
//! them: not their section numbers, not their file names, not the folder they live in.
//! `no_text_file_cites_a_document_outside_the_repository` scans every text file for such a
//! citation and names each by file and line; `cited_doc_sections_exist` checks that a citation
//! of a docs/ section (`(docs/mapping.md, "Paths")`, `docs/mapping.md#paths`, a Markdown link
//! with an anchor) names a heading that exists, so renaming a heading cannot leave a citation dangling.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// What the scan reads: everything the repository ships as text, except build output.
const ROOTS: &[&str] = &[
    "crates",
    "bins",
    "docs",
    "fixtures",
    "fuzz",
    ".ci",
    "README.md",
    "Cargo.toml",
];

/// Names of the outside documents and their folder. Built from pieces so that this file, which
/// the scan reads too, does not cite them itself.
const OUTSIDE: &[&str] = &[
    concat!("knock-", "sources"),
    concat!("knock-api-", "openapi"),
    concat!("../", "shared"),
    concat!("shared/", "spec"),
    concat!("/work/", "shared"),
];

/// The outside contract's name, as its section citations spell it.
const CONTRACT_WORD: &str = concat!("CON", "TRACT");

/// The outside wire-format notes' name; no document of ours shares it
/// (ours is docs/platform-payloads.md), so any use of it cites them.
const WIRE_FORMATS: &str = concat!("wire-", "formats");

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every text file under [`ROOTS`], skipping build output and files that are not UTF-8.
fn text_files(root: &Path) -> Vec<(PathBuf, String)> {
    let mut pending: Vec<PathBuf> = ROOTS.iter().map(|r| root.join(r)).collect();
    let mut files = Vec::new();
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name == "target" || name == ".git" {
                continue;
            }
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            files.push((relative, text));
        }
    }
    files.sort();
    files
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Why this line cites a document outside the repository, if it does.
fn outside_citation(line: &str) -> Option<String> {
    if let Some(name) = OUTSIDE.iter().find(|n| line.contains(*n)) {
        return Some(format!("names `{name}`"));
    }
    let bytes = line.as_bytes();
    for (at, _) in line.match_indices(CONTRACT_WORD) {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + CONTRACT_WORD.len()).copied();
        if !before.is_some_and(is_word_byte) && !after.is_some_and(is_word_byte) {
            return Some(format!("cites `{CONTRACT_WORD}`"));
        }
    }
    let lower = line.to_ascii_lowercase();
    for (at, _) in lower.match_indices("contract") {
        let rest = &lower.as_bytes()[at + "contract".len()..];
        if matches!(rest, [b' ' | b'_', d, ..] if d.is_ascii_digit()) {
            return Some("cites a contract section by number".to_owned());
        }
    }
    if line.contains(WIRE_FORMATS) {
        return Some(format!(
            "cites `{WIRE_FORMATS}`, the outside notes (ours: docs/platform-payloads.md)"
        ));
    }
    None
}

#[test]
fn no_text_file_cites_a_document_outside_the_repository() {
    let root = workspace_root();
    let mut found = Vec::new();
    for (path, text) in text_files(&root) {
        for (n, line) in text.lines().enumerate() {
            if let Some(why) = outside_citation(line) {
                found.push(format!(
                    "{}:{}: {why}: {}",
                    path.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "{} citation(s) of documents outside the repository; cite the docs/ file and section \
         that holds the decision instead (docs/product-decisions.md, docs/platform-payloads.md):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn outside_citations_are_recognised_and_ours_are_not() {
    let contract = format!("// {CONTRACT_WORD} 6: the answers.");
    let split = format!("//! The way in ({CONTRACT_WORD}");
    let numbered = concat!("fn verdicts_follow_con", "tract_5() {");
    let notes = format!("// {WIRE_FORMATS} 1.4: device clock fast.");
    let notes_md = format!("(see {WIRE_FORMATS}.md 2.5)");
    let folder = format!("`{}/MEASURED.md` holds the ceilings.", OUTSIDE[2]);
    for bad in [&contract, &split, numbered, &notes, &notes_md, &folder] {
        assert!(outside_citation(bad).is_some(), "missed: {bad}");
    }
    let ours = "// Limits (docs/platform-payloads.md, \"Segment's Tracking API\").".to_owned();
    let link = "[the notes](../platform-payloads.md#segment)".to_owned();
    for good in [
        ours.as_str(),
        link.as_str(),
        "fn classes_follow_the_contract() {",
        "// the contract is objects.",
        "CONTRACTS_DIR",
    ] {
        assert_eq!(outside_citation(good), None, "flagged: {good}");
    }
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The headings of a Markdown file (outside code fences), as written and with a leading
/// section number (`6. Answers`) removed.
fn headings(markdown: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let Some(text) = line.strip_prefix('#') else {
            continue;
        };
        if fenced {
            continue;
        }
        let Some(text) = text.trim_start_matches('#').strip_prefix(' ') else {
            continue;
        };
        let text = text.trim();
        out.insert(text.to_owned());
        if let Some((number, rest)) = text.split_once(". ")
            && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            out.insert(rest.to_owned());
        }
    }
    out
}

/// A line with its comment marker (`//!`, `///`, `//`, `--`, `#`, `*`) and indentation removed.
fn uncommented(line: &str) -> &str {
    let line = line.trim_start();
    ["//!", "///", "//", "--", "#", "*"]
        .iter()
        .find_map(|m| line.strip_prefix(m))
        .unwrap_or(line)
        .trim_start()
}

/// One citation of a docs/ section: the file (relative to the workspace root) and either a
/// section name or an anchor.
#[derive(Debug, PartialEq)]
enum Cited {
    Section(String, String),
    Anchor(String, String),
}

/// The section citations in one file. A quoted section name may wrap onto the next line.
fn section_citations(path: &Path, text: &str) -> Vec<(usize, Cited)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        for (at, _) in line.match_indices("docs/") {
            let before = line[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '-' | '_')) {
                continue;
            }
            let rest = &line[at..];
            let Some(end) = rest.find(".md") else {
                continue;
            };
            let file = &rest[..end + 3];
            if !file
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_'))
            {
                continue;
            }
            let after = &rest[end + 3..];
            if let Some(anchor) = after.strip_prefix('#') {
                let anchor: String = anchor
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_'))
                    .collect();
                out.push((n + 1, Cited::Anchor(file.to_owned(), anchor)));
            } else if let Some(quoted) = after.strip_prefix(", \"") {
                let mut name = quoted.to_owned();
                let mut next = n + 1;
                while !name.contains('"') && next < lines.len() {
                    name.push(' ');
                    name.push_str(uncommented(lines[next]));
                    next += 1;
                }
                if let Some((name, _)) = name.split_once('"') {
                    out.push((n + 1, Cited::Section(file.to_owned(), name.to_owned())));
                }
            }
        }
        // Relative Markdown links with an anchor, in Markdown files.
        if path.extension().is_some_and(|e| e == "md") {
            for (at, _) in line.match_indices("](") {
                let target = &line[at + 2..];
                let Some(close) = target.find(')') else {
                    continue;
                };
                let target = &target[..close];
                if target.contains("://") || target.starts_with('#') {
                    continue;
                }
                if let Some((file, anchor)) = target.split_once(".md#") {
                    let file = path.parent().unwrap().join(format!("{file}.md"));
                    out.push((
                        n + 1,
                        Cited::Anchor(file.to_string_lossy().into_owned(), anchor.to_owned()),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn cited_doc_sections_exist() {
    let root = workspace_root();
    let mut broken = Vec::new();
    for (path, text) in text_files(&root) {
        for (line, cited) in section_citations(&path, &text) {
            let (file, found) = match &cited {
                Cited::Section(file, name) | Cited::Anchor(file, name) => (file, name),
            };
            let Ok(doc) = std::fs::read_to_string(root.join(file)) else {
                broken.push(format!("{}:{line}: no file {file}", path.display()));
                continue;
            };
            let headings = headings(&doc);
            let exists = match &cited {
                // "Redeliveries" names the heading "Redeliveries (the same webhook twice)".
                Cited::Section(..) => headings.iter().any(|h| {
                    h == found
                        || h.strip_prefix(found.as_str())
                            .is_some_and(|r| r.starts_with(" ("))
                }),
                Cited::Anchor(..) => headings.iter().any(|h| slug(h) == *found),
            };
            if !exists {
                broken.push(format!(
                    "{}:{line}: {file} has no section {found:?}",
                    path.display()
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "citations of docs/ sections that do not exist:\n{}",
        broken.join("\n")
    );
}

#[test]
fn section_citations_are_read_across_lines_and_from_links() {
    let code = "// (docs/mapping.md, \"Inline\n// identification with a trigger\") and docs/mapping.md#paths.";
    assert_eq!(
        section_citations(Path::new("crates/a.rs"), code),
        [
            (
                1,
                Cited::Section(
                    "docs/mapping.md".to_owned(),
                    "Inline identification with a trigger".to_owned()
                )
            ),
            (
                2,
                Cited::Anchor("docs/mapping.md".to_owned(), "paths".to_owned())
            ),
        ]
    );
    let md = "See [paths](../mapping.md#paths) and [site](https://x.example/a.md#b).";
    assert_eq!(
        section_citations(Path::new("docs/sources/segment.md"), md),
        [(
            1,
            Cited::Anchor("docs/sources/../mapping.md".to_owned(), "paths".to_owned())
        )]
    );
    let doc = "# Title\n## 6. Answers\n```toml\n# not a heading\n```\n### `crates/core` (x)\n";
    let h = headings(doc);
    assert!(h.contains("Answers") && h.contains("6. Answers") && !h.contains("not a heading"));
    assert!(h.iter().any(|h| slug(h) == "6-answers"));
    assert!(h.iter().any(|h| slug(h) == "cratescore-x"));
}
