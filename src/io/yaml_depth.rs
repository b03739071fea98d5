//! A guard every YAML reader of outside input runs first (environment.yml, lockfiles, the
//! manifest): shared plain input handling, not part of any one file's reader.

/// Brackets nested deeper than this are refused before the YAML parser sees them.
pub(crate) const MAX_FLOW_NESTING: usize = 256;

/// Where a YAML text nests its `[` and `{` deeper than [`MAX_FLOW_NESTING`].
#[derive(Debug, thiserror::Error)]
#[error("brackets nested more than {MAX_FLOW_NESTING} deep at line {line}, column {column}")]
pub(crate) struct TooDeep {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// libyaml's scanner (under serde_yaml) revisits every open bracket for every token, so the
/// time to reject `[[[[...` grows with the square of its length: a megabyte of brackets
/// would hold staging for minutes before the parser's own depth limit ever speaks. Every
/// bracket counts here, quoted or not: no real file nests anywhere near this deep, so the
/// count needs no YAML rules that an input could play against it.
pub(crate) fn check_flow_nesting(text: &str) -> Result<(), TooDeep> {
    let mut depth: usize = 0;
    let (mut line, mut column) = (1, 0);
    for character in text.chars() {
        column += 1;
        match character {
            '\n' => {
                line += 1;
                column = 0;
            }
            '[' | '{' => {
                depth += 1;
                if depth > MAX_FLOW_NESTING {
                    return Err(TooDeep { line, column });
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
