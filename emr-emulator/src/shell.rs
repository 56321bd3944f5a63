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

#[cfg(test)]
mod tests {
    use super::*;

    /// (text, word, the token's bytes in the line) of each token.
    fn tokens(line: &str) -> Vec<(String, bool, &str)> {
        shell_tokens(line)
            .into_iter()
            .map(|t| (t.text, t.word, &line[t.start..t.end]))
            .collect()
    }

    #[test]
    fn quotes_and_backslashes_are_removed_from_words_but_kept_in_their_ranges() {
        let line = r#"a 'b c' "d\"e" f\ g"#;
        assert_eq!(
            tokens(line),
            vec![
                ("a".into(), true, "a"),
                ("b c".into(), true, "'b c'"),
                ("d\"e".into(), true, r#""d\"e""#),
                ("f g".into(), true, r"f\ g"),
            ]
        );
    }

    #[test]
    fn operators_end_words_and_are_tokens_of_their_own() {
        let line = "set -e;x&&y|z>out";
        let got = tokens(line);
        let words: Vec<&str> = got.iter().filter(|t| t.1).map(|t| t.0.as_str()).collect();
        let operators: Vec<&str> = got.iter().filter(|t| !t.1).map(|t| t.2).collect();
        assert_eq!(words, ["set", "-e", "x", "y", "z", "out"]);
        assert_eq!(operators, [";", "&", "&", "|", ">"]);
        assert!(got.iter().filter(|t| !t.1).all(|t| t.0.is_empty()));
    }

    #[test]
    fn an_operator_inside_quotes_is_part_of_the_word() {
        assert_eq!(tokens("'a;b'"), vec![("a;b".into(), true, "'a;b'")]);
    }
}
