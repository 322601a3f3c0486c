//! AWS Signature Version 4 verification of a request signed in its `Authorization` header, as
//! the AWS CLI and SDKs sign them.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `yyyymmdd` of the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Why a signature was not accepted (the text is safe to return to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("Authorization header: {0}")]
    Malformed(String),
    #[error("Signature expired: {0} is more than 15 minutes from the server's time")]
    Expired(String),
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")]
    Mismatch,
}

/// Parses the header value; `None` when it is not a SigV4 header at all.
pub fn parse_authorization(value: &str) -> Option<Result<Authorization, SigError>> {
    let rest = value.trim().strip_prefix("AWS4-HMAC-SHA256")?;
    Some(parse_fields(rest))
}

fn parse_fields(rest: &str) -> Result<Authorization, SigError> {
    let bad = |m: &str| SigError::Malformed(m.to_string());
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or_else(|| bad("Credential= is missing"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" {
        return Err(bad(
            "Credential: expected <access key id>/<yyyymmdd>/<region>/<service>/aws4_request",
        ));
    }
    let signed_headers: Vec<String> = signed
        .ok_or_else(|| bad("SignedHeaders= is missing"))?
        .split(';')
        .map(|h| h.to_ascii_lowercase())
        .collect();
    Ok(Authorization {
        access_key_id: scope[0].to_string(),
        date: scope[1].to_string(),
        region: scope[2].to_string(),
        service: scope[3].to_string(),
        signed_headers,
        signature: signature
            .ok_or_else(|| bad("Signature= is missing"))?
            .to_ascii_lowercase(),
    })
}

/// A request as received.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent (still percent-encoded).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Header names (any case) and values.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Request<'_> {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters stay, `/` stays when `keep_slash`.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric()
            || matches!(c, '-' | '_' | '.' | '~')
            || (keep_slash && c == '/')
        {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&decode(k), false), uri_encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The string to sign for `req` under `auth` (exposed for tests and for signing clients).
pub fn string_to_sign(auth: &Authorization, req: &Request<'_>, amz_date: &str) -> String {
    let path = if req.path.is_empty() { "/" } else { req.path };
    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<String> = req
            .header_values(name)
            .iter()
            .map(|v| canonical_header_value(v))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload = req
        .header_values("x-amz-content-sha256")
        .first()
        .map(|v| v.to_string())
        .unwrap_or_else(|| sha256_hex(req.body));
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri_encode(path, true),
        canonical_query(req.query),
        canonical_headers,
        auth.signed_headers.join(";"),
        payload
    );
    format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}/{}/{}/aws4_request\n{}",
        auth.date,
        auth.region,
        auth.service,
        sha256_hex(canonical.as_bytes())
    )
}

/// The signature of `string_to_sign` with `secret` under the credential scope of `auth`.
pub fn signature(secret: &str, auth: &Authorization, string_to_sign: &str) -> String {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    let k_region = hmac(&k_date, auth.region.as_bytes());
    let k_service = hmac(&k_region, auth.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex(&hmac(&k_signing, string_to_sign.as_bytes()))
}

/// Seconds since the epoch of an `x-amz-date` (`yyyymmddThhmmssZ`).
fn parse_amz_date(s: &str) -> Option<f64> {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ").ok()?;
    Some(t.and_utc().timestamp() as f64)
}

/// Verifies `req` against `auth` with the key's `secret`, at time `now` (seconds since the epoch).
pub fn verify(
    secret: &str,
    auth: &Authorization,
    req: &Request<'_>,
    now: f64,
) -> Result<(), SigError> {
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SigError::Malformed(
            "SignedHeaders must include host".into(),
        ));
    }
    let amz_date = req
        .header_values("x-amz-date")
        .first()
        .map(|s| s.to_string())
        .ok_or_else(|| SigError::Malformed("the X-Amz-Date header is missing".into()))?;
    let t = parse_amz_date(&amz_date).ok_or_else(|| {
        SigError::Malformed(format!(
            "X-Amz-Date: expected yyyymmddThhmmssZ, got {amz_date:?}"
        ))
    })?;
    if (now - t).abs() > 15.0 * 60.0 {
        return Err(SigError::Expired(amz_date));
    }
    if !amz_date.starts_with(&auth.date) {
        return Err(SigError::Malformed(
            "the credential scope's date is not the X-Amz-Date's day".into(),
        ));
    }
    if let Some(declared) = req.header_values("x-amz-content-sha256").first() {
        if *declared != "UNSIGNED-PAYLOAD" && !declared.eq_ignore_ascii_case(&sha256_hex(req.body))
        {
            return Err(SigError::Mismatch);
        }
    }
    let expected = signature(secret, auth, &string_to_sign(auth, req, &amz_date));
    use subtle::ConstantTimeEq;
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(SigError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// AWS's documented example request (IAM ListUsers, 2015-08-30; its canonical request hashes to
    /// f536975d…, as documented), signed with the documented example secret.
    fn example() -> (Authorization, Vec<(String, String)>) {
        let auth = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=33f5dad2191de0cb4b7ab912f876876c2c4f72e2991a458f9499233c7b992438",
        )
        .unwrap()
        .unwrap();
        let headers = vec![
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
            ("Host".to_string(), "iam.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
        ];
        (auth, headers)
    }

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const THEN: f64 = 1_440_938_160.0; // 2015-08-30T12:36:00Z

    #[test]
    fn aws_documented_example_verifies() {
        let (auth, headers) = example();
        assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
        assert_eq!(auth.service, "iam");
        let req = Request {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &headers,
            body: b"",
        };
        assert!(string_to_sign(&auth, &req, "20150830T123600Z")
            .ends_with("f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"));
        verify(SECRET, &auth, &req, THEN + 60.0).unwrap();
        // Another secret, another query, another time: refused.
        assert_eq!(verify("nope", &auth, &req, THEN), Err(SigError::Mismatch));
        let other = Request {
            query: "Action=DeleteUser&Version=2010-05-08",
            ..req
        };
        assert_eq!(verify(SECRET, &auth, &other, THEN), Err(SigError::Mismatch));
        let req = Request {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &headers,
            body: b"",
        };
        assert!(matches!(
            verify(SECRET, &auth, &req, THEN + 3600.0),
            Err(SigError::Expired(_))
        ));
    }

    #[test]
    fn a_changed_body_breaks_the_signature() {
        let headers = vec![
            ("host".to_string(), "127.0.0.1:7878".to_string()),
            ("x-amz-date".to_string(), "20261122T030000Z".to_string()),
        ];
        let mut auth = Authorization {
            access_key_id: "BKIA".into(),
            date: "20261122".into(),
            region: "us-east-1".into(),
            service: "ecs".into(),
            signed_headers: vec!["host".into(), "x-amz-date".into()],
            signature: String::new(),
        };
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"{\"cluster\":\"a\"}",
        };
        let now = parse_amz_date("20261122T030000Z").unwrap();
        auth.signature = signature(
            "s3cret",
            &auth,
            &string_to_sign(&auth, &req, "20261122T030000Z"),
        );
        verify("s3cret", &auth, &req, now).unwrap();
        let tampered = Request {
            body: b"{\"cluster\":\"b\"}",
            ..req
        };
        assert_eq!(
            verify("s3cret", &auth, &tampered, now),
            Err(SigError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_are_named() {
        assert!(parse_authorization("Bearer x").is_none());
        let e = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=00",
        )
        .unwrap()
        .unwrap_err();
        assert!(e.to_string().contains("Credential"), "{e}");
        let e = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=a/20260101/r/s/aws4_request, Signature=00",
        )
        .unwrap()
        .unwrap_err();
        assert!(e.to_string().contains("SignedHeaders"), "{e}");
    }
}
