//! A shell tokenizer, just enough to find `spark-submit` and its application in the line of
//! `bash -c`: words (with quotes and backslashes removed, and their byte range in the line
//! kept so the line can be rewritten in place) and the operators `;&|()<>`.

pub(crate) struct Token {
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Without quotes; empty for an operator.
    pub(crate) text: String,
    pub(crate) word: bool,
}

/// Shell words and operators, enough to find spark-submit and its application.
pub(crate) fn shell_tokens(line: &str) -> Vec<Token> {
    const OPERATORS: &str = ";&|()<>";
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if OPERATORS.contains(c) {
            tokens.push(Token {
                start,
                end: start + c.len_utf8(),
                text: String::new(),
                word: false,
            });
            i += 1;
            continue;
        }
        let mut text = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i].1;
            match quote {
                Some(q) if c == q => quote = None,
                Some('"') if c == '\\' && i + 1 < chars.len() => {
                    i += 1;
                    text.push(chars[i].1);
                }
                Some(_) => text.push(c),
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == '\\' && i + 1 < chars.len() => {
                    i += 1;
                    text.push(chars[i].1);
                }
                None if c.is_whitespace() || OPERATORS.contains(c) => break,
                None => text.push(c),
            }
            i += 1;
        }
        let end = chars.get(i).map_or(line.len(), |(p, _)| *p);
        tokens.push(Token {
            start,
            end,
            text,
            word: true,
        });
    }
    tokens
}
