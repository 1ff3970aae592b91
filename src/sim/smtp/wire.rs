//! The simulator's side of the SMTP wire: replies (one line or several),
//! bounded command lines and DATA with its dot-unstuffing, paths, AUTH's
//! base64, and the header fields it records (unfolded, RFC 2047 subjects
//! decoded).

use super::*;

pub(super) async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    line: &str,
) -> io::Result<()> {
    let s = conn.get_mut();
    s.write_all(line.as_bytes()).await?;
    s.write_all(b"\r\n").await?;
    s.flush().await
}

pub(super) async fn send_multi<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    code: u16,
    lines: &[String],
) -> io::Result<()> {
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.push_str(&format!("{code}{sep}{l}\r\n"));
    }
    let s = conn.get_mut();
    s.write_all(out.as_bytes()).await?;
    s.flush().await
}

/// One line without its CRLF (or LF); `None` at the end of the stream. A
/// line longer than `max` is an error (the connection is dropped).
pub(super) async fn read_line<S: AsyncRead + Unpin>(
    conn: &mut BufReader<S>,
    max: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = (&mut *conn)
        .take(max as u64 + 2)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") {
        if line.len() > max {
            return Err(io::Error::other("line too long"));
        }
        // The stream ended mid-line.
        return Ok(None);
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    Ok(Some(line))
}

/// A client's line in an AUTH exchange.
pub(super) async fn read_text<S: AsyncRead + Unpin>(conn: &mut BufReader<S>) -> io::Result<String> {
    match read_line(conn, MAX_LINE).await? {
        Some(l) => Ok(String::from_utf8_lossy(&l).into_owned()),
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed in AUTH",
        )),
    }
}

/// The message after DATA up to the lone dot; `None` when it is too big
/// (read to its end all the same, so the conversation stays in step).
pub(super) async fn read_data<S: AsyncRead + Unpin>(
    conn: &mut BufReader<S>,
) -> io::Result<Option<String>> {
    let mut data = Vec::new();
    let mut too_big = false;
    loop {
        let Some(line) = read_line(conn, MAX_LINE * 4).await? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed in DATA",
            ));
        };
        if line == b"." {
            break;
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if data.len() + line.len() > MAX_DATA {
            too_big = true;
        }
        if !too_big {
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
        }
    }
    if too_big {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&data).into_owned()))
}

/// `FROM:<a@b> SIZE=…` → `a@b` (the null path `<>` gives an empty string).
pub(super) fn path(arg: &str, prefix: &str) -> Option<String> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_owned())
}

pub(super) fn decode(b64: &str) -> Option<Vec<u8>> {
    B64.decode(b64.trim()).ok()
}

pub(super) fn decode_text(b64: &str) -> Option<String> {
    String::from_utf8(decode(b64)?).ok()
}

/// The header block as (name, unfolded value) pairs.
pub(super) fn headers(data: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in data.split("\r\n") {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`);
/// whitespace between two encoded words is dropped, as the RFC says.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut pending_space = String::new();
    let mut last_was_word = false;
    for token in value.split_inclusive([' ', '\t']) {
        let word = token.trim_end_matches([' ', '\t']);
        let space = &token[word.len()..];
        match decode_word(word) {
            Some(text) => {
                if !last_was_word {
                    out.push_str(&pending_space);
                }
                out.push_str(&text);
                last_was_word = true;
            }
            None => {
                out.push_str(&pending_space);
                out.push_str(word);
                last_was_word = word.is_empty() && last_was_word;
            }
        }
        pending_space = space.to_owned();
    }
    out.push_str(&pending_space);
    out.trim_end().to_owned()
}

pub(super) fn decode_word(word: &str) -> Option<String> {
    let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut parts = inner.splitn(3, '?');
    let charset = parts.next()?;
    let encoding = parts.next()?;
    let text = parts.next()?;
    if !(charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii")) {
        return None;
    }
    let bytes = match encoding {
        "b" | "B" => B64.decode(text).ok()?,
        "q" | "Q" => {
            let mut out = Vec::new();
            let b = text.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => out.push(b' '),
                    b'=' => {
                        let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            out
        }
        _ => return None,
    };
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words() {
        assert_eq!(decode_words("plain subject"), "plain subject");
        assert_eq!(decode_words("=?utf-8?b?R3LDvMOfZQ==?="), "Grüße");
        assert_eq!(
            decode_words("=?utf-8?b?R3LDvMOfZQ==?= =?utf-8?q?_aus_K=C3=B6ln?="),
            "Grüße aus Köln"
        );
        assert_eq!(
            decode_words("Re: =?utf-8?q?caf=C3=A9?= now"),
            "Re: café now"
        );
        assert_eq!(decode_words("=?iso-8859-1?q?x?="), "=?iso-8859-1?q?x?=");
    }

    #[test]
    fn headers_unfold_and_paths_parse() {
        let data = "Subject: a\r\n long one\r\nFrom: x@y\r\n\r\nbody\r\n";
        let h = headers(data);
        assert_eq!(h[0], ("Subject".into(), "a long one".into()));
        assert_eq!(h.len(), 2);
        assert_eq!(path("FROM:<a@b> SIZE=10", "FROM:").as_deref(), Some("a@b"));
        assert_eq!(path("from: <>", "FROM:").as_deref(), Some(""));
        assert_eq!(path("TO:a@b", "TO:"), None);
    }
}
