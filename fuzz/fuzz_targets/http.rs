//! Fuzz target: the http adapter on arbitrary bytes.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use tributary_core::path::DataAlias;

fuzz_target!(|data: &[u8]| {
    let settings = tributary_adapter::testing::source_environment(DataAlias::Literal);
    common::check(data, |req| {
        tributary_http::HttpAdapter::new().parse(req, &settings)
    });
});
