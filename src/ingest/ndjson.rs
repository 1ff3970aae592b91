//! The NDJSON line splitter of bulk uploads (`bulk.rs`): chunks of the
//! request body go in, whole lines come out, each line's bytes searched for
//! its newline once however the body was cut into chunks (the search resumes
//! where the last one stopped), so a long line sent a byte at a time costs
//! linear work. A line longer than the route allows is reported once and its
//! rest skipped without being kept.

/// What the splitter found next.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A whole line, without its `\n`.
    Line(&'a [u8]),
    /// A line longer than the limit: its start was dropped, its rest is
    /// skipped up to the next newline.
    TooLong,
}

pub struct Splitter {
    buf: Vec<u8>,
    /// Where the current (incomplete) line starts in `buf`.
    start: usize,
    /// `buf[start..scanned]` holds no newline: the next search starts here.
    scanned: usize,
    /// Inside a line already reported as too long.
    skipping: bool,
    max_line: usize,
    /// Bytes searched for a newline so far (each byte once): the work done.
    pub searched: u64,
}

impl Splitter {
    pub fn new(max_line: usize) -> Splitter {
        Splitter {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            skipping: false,
            max_line,
            searched: 0,
        }
    }

    /// Appends a chunk; the lines it completes come from [`Splitter::next`].
    pub fn push(&mut self, chunk: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole line (or a too-long report), or `None` until more is pushed.
    pub fn next(&mut self) -> Option<Item<'_>> {
        loop {
            let from = self.scanned;
            let found = self.buf[from..].iter().position(|&b| b == b'\n');
            self.searched += found.map_or(self.buf.len() - from, |p| p + 1) as u64;
            match found {
                Some(pos) => {
                    let (start, end) = (self.start, from + pos);
                    self.start = end + 1;
                    self.scanned = self.start;
                    if std::mem::take(&mut self.skipping) {
                        continue;
                    }
                    return Some(Item::Line(&self.buf[start..end]));
                }
                None => {
                    self.scanned = self.buf.len();
                    if self.buf.len() - self.start > self.max_line {
                        self.buf.clear();
                        (self.start, self.scanned) = (0, 0);
                        if !std::mem::replace(&mut self.skipping, true) {
                            return Some(Item::TooLong);
                        }
                    }
                    return None;
                }
            }
        }
    }

    /// At the end of the body: its last line when it had no final newline.
    pub fn finish(&mut self) -> Option<&[u8]> {
        let rest = &self.buf[self.start..];
        (!rest.is_empty() && !self.skipping).then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut s = Splitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c);
            while let Some(item) = s.next() {
                out.push(match item {
                    Item::Line(l) => String::from_utf8(l.to_vec()).unwrap(),
                    Item::TooLong => "<too long>".into(),
                });
            }
        }
        if let Some(l) = s.finish() {
            out.push(String::from_utf8(l.to_vec()).unwrap());
        }
        out
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(split(&[b"a\nb", b"c\n", b"\nd"], 10), ["a", "bc", "", "d"]);
        assert_eq!(split(&[b"a\n"], 10), ["a"]);
        assert_eq!(split(&[b"", b"x"], 10), ["x"]);
    }

    #[test]
    fn a_too_long_line_is_reported_once_and_skipped() {
        assert_eq!(
            split(&[b"ok\n0123", b"456789abc", b"def\nnext\n"], 8),
            ["ok", "<too long>", "next"]
        );
        // Cut off while too long: nothing more comes out.
        assert_eq!(split(&[b"0123456789abc"], 8), ["<too long>"]);
    }

    #[test]
    fn a_long_line_fed_a_byte_at_a_time_is_searched_once() {
        const LEN: usize = 128 * 1024;
        let mut s = Splitter::new(1 << 20);
        for _ in 0..LEN {
            s.push(b"x");
            assert!(s.next().is_none());
        }
        s.push(b"\n");
        assert_eq!(s.next(), Some(Item::Line(&[b'x'; LEN][..])));
        // Every byte searched once: linear, where searching the whole
        // partial line again on each chunk would be LEN²/2 (8.6e9).
        assert_eq!(s.searched, LEN as u64 + 1);
    }
}
