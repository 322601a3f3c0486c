//! A request's header fields as the client sent them: names and values are ranges of one
//! shared buffer (the request head), in order, names in the client's case. Looking a field up
//! is a scan comparing names without case: a request has a handful of fields and the request
//! path asks for few of them, so this costs less than building a map (a hash, a validation
//! and a shared-buffer reference per field, and the map's own allocation) that is read
//! a few times and dropped.

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;

/// Where one field's name and value lie in the buffer.
#[derive(Debug, Clone, Copy)]
struct Span {
    name: u32,
    name_len: u32,
    value: u32,
    value_len: u32,
}

/// Header fields over a shared buffer.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    buf: Bytes,
    spans: Vec<Span>,
}

/// Builds [`Fields`] over one buffer: positions are added as they are found, then the buffer.
pub(crate) struct FieldsBuilder {
    spans: Vec<Span>,
}

impl FieldsBuilder {
    /// Room for `n` fields.
    pub fn with_capacity(n: usize) -> FieldsBuilder {
        FieldsBuilder {
            spans: Vec::with_capacity(n),
        }
    }

    /// A field whose name and value are at these byte ranges of the buffer to come.
    pub fn push(&mut self, name: (usize, usize), value: (usize, usize)) {
        self.spans.push(Span {
            name: name.0 as u32,
            name_len: name.1 as u32,
            value: value.0 as u32,
            value_len: value.1 as u32,
        });
    }

    /// The fields over `buf` (every range pushed lies within it; heads are far below 4 GiB).
    pub fn finish(self, buf: Bytes) -> Fields {
        debug_assert!(self.spans.iter().all(|s| {
            (s.name + s.name_len) as usize <= buf.len()
                && (s.value + s.value_len) as usize <= buf.len()
        }));
        Fields {
            buf,
            spans: self.spans,
        }
    }
}

impl Fields {
    /// Number of fields (each repetition of a name counts).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn at(&self, s: &Span) -> (&[u8], &[u8]) {
        let b = &self.buf[..];
        (
            &b[s.name as usize..(s.name + s.name_len) as usize],
            &b[s.value as usize..(s.value + s.value_len) as usize],
        )
    }

    /// The fields in order, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans.iter().map(|s| self.at(s))
    }

    /// Values of every field named `name` (any case), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The first field named `name` (any case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The first field named `name` as text (`None` when absent or not visible ASCII).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(visible_ascii)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The fields of a map, in its order (HTTP/2 requests and tests).
    pub fn from_map(map: &HeaderMap) -> Fields {
        let mut buf = BytesMut::with_capacity(
            map.iter()
                .map(|(n, v)| n.as_str().len() + v.len())
                .sum::<usize>(),
        );
        let mut b = FieldsBuilder::with_capacity(map.len());
        for (name, value) in map {
            let n = buf.len();
            buf.put_slice(name.as_str().as_bytes());
            let v = buf.len();
            buf.put_slice(value.as_bytes());
            b.push((n, name.as_str().len()), (v, value.len()));
        }
        b.finish(buf.freeze())
    }
}

/// `v` as text when it is visible ASCII (with spaces and tabs), as `HeaderValue::to_str` has it.
pub fn visible_ascii(v: &[u8]) -> Option<&str> {
    if v.iter().all(|&b| b == b'\t' || (b' '..0x7f).contains(&b)) {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn lookups_ignore_case_and_keep_order() {
        let mut m = HeaderMap::new();
        m.append("x-a", HeaderValue::from_static("1"));
        m.append("host", HeaderValue::from_static("example.com"));
        m.append("x-a", HeaderValue::from_static("2"));
        let f = Fields::from_map(&m);
        assert_eq!(f.len(), 3);
        assert_eq!(f.get("HOST"), Some(&b"example.com"[..]));
        assert_eq!(f.get_all("X-A").collect::<Vec<_>>(), vec![b"1", b"2"]);
        assert!(f.get("x-b").is_none());
        assert!(!f.contains("hos"));
        assert_eq!(f.get_str("host"), Some("example.com"));
    }

    #[test]
    fn ranges_point_into_the_buffer() {
        let head = Bytes::from_static(b"Host: a\r\nX-Y:  b c\r\n");
        let mut b = FieldsBuilder::with_capacity(2);
        b.push((0, 4), (6, 1));
        b.push((9, 3), (15, 3));
        let f = b.finish(head);
        let all: Vec<_> = f.iter().collect();
        assert_eq!(
            all,
            vec![(&b"Host"[..], &b"a"[..]), (&b"X-Y"[..], &b"b c"[..])]
        );
        assert_eq!(f.get("x-y"), Some(&b"b c"[..]));
    }

    #[test]
    fn text_is_visible_ascii_only() {
        assert_eq!(visible_ascii(b"a b\tc"), Some("a b\tc"));
        assert_eq!(visible_ascii(b"caf\xc3\xa9"), None);
        assert_eq!(visible_ascii(b"a\x01"), None);
    }
}
