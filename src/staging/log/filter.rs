//! Turns what the installer, conda and pip write to a terminal into lines fit for a log.
//!
//! conda redraws progress bars with carriage returns and draws spinners with backspaces even
//! under `--quiet` (conda #9108, #7124); pip draws its own bars. Configuring them quiet is not
//! enough, so their output goes through a small terminal model: `\r` returns to the start of
//! the line, `\b` steps back, escape sequences are dropped (`ESC[K` erases to the end), and
//! only the final rendering of each line survives. A classifier then drops what is pure
//! progress (bars, spinner residue, blank lines) so the log keeps what was installed, warnings
//! and errors.

/// Feeds raw bytes, yields finished lines without control characters.
#[derive(Default)]
pub(crate) struct TerminalLines {
    line: Vec<char>,
    cursor: usize,
    pending: Vec<u8>,
    escape: EscapeState,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum EscapeState {
    #[default]
    None,
    /// Just saw ESC.
    Start,
    /// Inside `ESC [ ...` until a final byte in `@..~`.
    Csi,
    /// Inside `ESC ] ...` until BEL or `ESC \`.
    Osc,
}

impl TerminalLines {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Processes a chunk of output and returns the lines it completed.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        // Decode as much valid UTF-8 as possible; an incomplete sequence at the end waits for
        // the next chunk, invalid bytes become U+FFFD.
        let mut completed = Vec::new();
        let pending = std::mem::take(&mut self.pending);
        let mut rest: &[u8] = &pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    self.feed_str(text, &mut completed);
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    // from_utf8 just validated this prefix.
                    self.feed_str(&String::from_utf8_lossy(valid), &mut completed);
                    if let Some(invalid) = error.error_len() {
                        self.put('\u{FFFD}');
                        rest = &after[invalid..];
                    } else {
                        self.pending = after.to_vec();
                        break;
                    }
                }
            }
        }
        completed
    }

    /// The unterminated last line, if any, when the stream ends.
    pub(crate) fn finish(&mut self) -> Option<String> {
        let line = self.take_line();
        (!line.trim().is_empty()).then_some(line)
    }

    fn feed_str(&mut self, text: &str, completed: &mut Vec<String>) {
        for character in text.chars() {
            match self.escape {
                EscapeState::Start => {
                    self.escape = match character {
                        '[' => EscapeState::Csi,
                        ']' => EscapeState::Osc,
                        _ => EscapeState::None,
                    };
                    continue;
                }
                EscapeState::Csi => {
                    if ('@'..='~').contains(&character) {
                        self.escape = EscapeState::None;
                        if character == 'K' {
                            self.line.truncate(self.cursor);
                        }
                    }
                    continue;
                }
                EscapeState::Osc => {
                    if character == '\u{7}' || character == '\\' {
                        self.escape = EscapeState::None;
                    }
                    continue;
                }
                EscapeState::None => {}
            }
            match character {
                '\n' => completed.push(self.take_line()),
                '\r' => self.cursor = 0,
                '\u{8}' => self.cursor = self.cursor.saturating_sub(1),
                '\u{1b}' => self.escape = EscapeState::Start,
                '\t' => self.put(' '),
                other if other.is_control() => {}
                other => self.put(other),
            }
        }
    }

    fn put(&mut self, character: char) {
        if self.cursor < self.line.len() {
            self.line[self.cursor] = character;
        } else {
            self.line.push(character);
        }
        self.cursor += 1;
    }

    fn take_line(&mut self) -> String {
        let line: String = self.line.iter().collect();
        self.line.clear();
        self.cursor = 0;
        line.trim_end().to_string()
    }
}

/// Whether a cleaned line is progress noise rather than information.
pub(crate) fn is_progress_noise(line: &str) -> bool {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return true;
    }
    // Spinner residue: a line made only of spinner glyphs and dots.
    if trimmed
        .chars()
        .all(|c| matches!(c, '|' | '/' | '-' | '\\' | '.' | ' '))
    {
        return true;
    }
    is_conda_progress_bar(trimmed) || is_pip_progress_bar(trimmed)
}

/// conda's bars: `numpy-1.26.4 | 6.5 MB | #####5     |  55%` (and the tqdm variant with
/// `█` blocks).
fn is_conda_progress_bar(line: &str) -> bool {
    let fields: Vec<&str> = line.split('|').collect();
    if fields.len() < 3 {
        return false;
    }
    let Some(last) = fields.last().map(|field| field.trim()) else {
        return false;
    };
    let Some(number) = last.strip_suffix('%') else {
        return false;
    };
    number.trim().parse::<f64>().is_ok()
}

/// pip's rich bars: `━━━━━━━━━━━━━━━━━ 1.2/1.2 MB 3.4 MB/s eta 0:00:00`.
fn is_pip_progress_bar(line: &str) -> bool {
    line.contains('━') || line.contains(" eta 0:") || line.starts_with("|█")
}

/// conda prints `Solving environment: ...working... done`; once the spinner is gone the
/// `...working...` part is residue too.
pub(crate) fn tidy(line: &str) -> String {
    line.replace(" ...working...", "")
        .replace("...working...", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(input: &[u8]) -> Vec<String> {
        let mut terminal = TerminalLines::new();
        let mut lines = terminal.feed(input);
        lines.extend(terminal.finish());
        lines
    }

    #[test]
    fn carriage_returns_keep_only_the_final_rendering() {
        let lines = render(b"numpy | 6.5 MB | ##  |  20% \rnumpy | 6.5 MB | ####|  100% \ndone\n");
        assert_eq!(lines, vec!["numpy | 6.5 MB | ####|  100%", "done"]);
        assert!(is_progress_noise(&lines[0]));
        assert!(!is_progress_noise(&lines[1]));
    }

    #[test]
    fn spinners_drawn_with_backspaces_vanish() {
        let lines = render(b"Solving environment: /\x08-\x08\\\x08|\x08done\n");
        assert_eq!(lines, vec!["Solving environment: done"]);
        assert_eq!(
            tidy("Solving environment: ...working... done"),
            "Solving environment: done"
        );
    }

    #[test]
    fn escape_sequences_are_dropped_and_erase_line_is_honoured() {
        let lines = render(b"\x1b[32mgreen\x1b[0m text\n50%\r\x1b[Kdone\n\x1b]0;title\x07x\n");
        assert_eq!(lines, vec!["green text", "done", "x"]);
    }

    #[test]
    fn utf8_split_across_chunks_survives() {
        let mut terminal = TerminalLines::new();
        let bytes = "caf\u{e9} \u{2501}\n".as_bytes();
        let mut lines = terminal.feed(&bytes[..4]);
        lines.extend(terminal.feed(&bytes[4..]));
        assert_eq!(lines, vec!["caf\u{e9} \u{2501}"]);
        assert_eq!(render(b"bad \xff byte\n"), vec!["bad \u{fffd} byte"]);
    }

    #[test]
    fn pip_bars_and_blank_lines_are_noise_but_messages_are_not() {
        assert!(is_progress_noise(
            "   ━━━━━━━━━━━━━━━━ 1.2/1.2 MB 3.4 MB/s eta 0:00:00"
        ));
        assert!(is_progress_noise("   "));
        assert!(is_progress_noise("|/-\\"));
        assert!(!is_progress_noise(
            "PackagesNotFoundError: The following packages are missing"
        ));
        assert!(!is_progress_noise("  - numpy=99"));
        assert!(!is_progress_noise("Preparing transaction: done"));
    }
}
