//! Golden tests: every fixture in `fixtures/segment/` through the adapter,
//! snapshotted as JSON. Receipt time and ids are fixed, so nothing needs
//! redacting and a change in any field shows up in review.

use std::path::Path;

use tributary_adapter::testing::{fixture_request, fixtures, render, source_environment};
use tributary_core::{config::SourceKind, path::DataAlias};
use tributary_segment::SegmentAdapter;

#[test]
fn fixtures_normalize_to_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/segment");
    let settings = source_environment(DataAlias::EventData);
    let adapter = SegmentAdapter::new(SourceKind::Segment);
    let files = fixtures(&dir);
    assert!(files.len() >= 20, "fixtures missing from {}", dir.display());
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let req = fixture_request(&path);
        let rendered = render(&adapter.parse(&req, &settings));
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_json_snapshot!(name, rendered);
        });
    }
}
