//! Path segments and query strings, percent-decoded without a dependency.

/// Decodes `%XX` escapes; with `plus_is_space`, `+` is a space (query strings).
/// Invalid escapes are kept as written; invalid UTF-8 is replaced, so any
/// input decodes to something.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&h), Some(&l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    out.push(hex_val(h) << 4 | hex_val(l));
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// The path's segments after the leading slash, decoded. A trailing slash is ignored.
pub(crate) fn segments(path: &str) -> Vec<String> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    path.split('/').map(|s| percent_decode(s, false)).collect()
}

/// The first value of a query parameter, decoded.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k, true) == name).then(|| percent_decode(v, true))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_keeps_bad_ones() {
        assert_eq!(percent_decode("a%20b%2Fc", false), "a b/c");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("%zz%", false), "%zz%");
        assert_eq!(percent_decode("%C3%A9", false), "é");
        assert_eq!(percent_decode("%FF", false), "\u{FFFD}");
    }

    #[test]
    fn segments_and_query() {
        assert_eq!(segments("/v1/users/u%201/"), ["v1", "users", "u 1"]);
        assert_eq!(
            query_param(Some("a=1&members=%5B%7B%7D%5D"), "members").as_deref(),
            Some("[{}]")
        );
        assert_eq!(
            query_param(Some("create_audience"), "create_audience").as_deref(),
            Some("")
        );
        assert_eq!(query_param(None, "x"), None);
    }
}
