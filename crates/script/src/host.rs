//! The host functions a script can call: HMAC and digests computed in Rust,
//! so a signature check costs microseconds, and a constant-time comparison.
//!
//! `crypto.hmacSha256Hex(key, data)`, `crypto.hmacSha256Base64(key, data)`,
//! `crypto.sha256Hex(data)` and `crypto.timingSafeEqual(a, b)`; keys and data
//! are strings, taken as their UTF-8 bytes.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rquickjs::{Ctx, Function, Object};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Defines the global `crypto` object in `ctx`, frozen.
pub(crate) fn install(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let crypto = Object::new(ctx.clone())?;
    crypto.set(
        "hmacSha256Hex",
        Function::new(ctx.clone(), |key: String, data: String| {
            hex::encode(hmac_sha256(key.as_bytes(), data.as_bytes()))
        })?,
    )?;
    crypto.set(
        "hmacSha256Base64",
        Function::new(ctx.clone(), |key: String, data: String| {
            base64::engine::general_purpose::STANDARD
                .encode(hmac_sha256(key.as_bytes(), data.as_bytes()))
        })?,
    )?;
    crypto.set(
        "sha256Hex",
        Function::new(ctx.clone(), |data: String| {
            hex::encode(Sha256::digest(data.as_bytes()))
        })?,
    )?;
    crypto.set(
        "timingSafeEqual",
        Function::new(ctx.clone(), |a: String, b: String| {
            bool::from(a.as_bytes().ct_eq(b.as_bytes()))
        })?,
    )?;
    ctx.globals().set("crypto", crypto.clone())?;
    let object: Object = ctx.globals().get("Object")?;
    let freeze: Function = object.get("freeze")?;
    freeze.call::<_, ()>((crypto,))?;
    Ok(())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}
