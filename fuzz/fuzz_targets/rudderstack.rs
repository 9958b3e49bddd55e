//! Fuzz target: the rudderstack adapter on arbitrary bytes.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use tributary_core::path::DataAlias;

fuzz_target!(|data: &[u8]| {
    let settings = tributary_adapter::testing::source_environment(DataAlias::EventData);
    common::check(data, |req| {
        tributary_rudderstack::RudderstackAdapter::new().parse(req, &settings)
    });
});
