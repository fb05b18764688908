//! A compact, source-like rendering of tokens, for the text of recorded `.await` points.
//!
//! `proc_macro2`'s `Display` puts a space between every pair of tokens
//! (`self . client . get (& url)`); snapshots should read like the code the user wrote
//! (`self.client.get(&url)`). Spacing follows rustfmt for the usual expression shapes; anything
//! unusual just gets a space, which is still readable.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// The longest text a site keeps, in `char`s, counting the trailing `…`.
pub(crate) const MAX_CHARS: usize = 60;

/// `tokens` rendered compactly and cut to [`MAX_CHARS`].
pub(crate) fn site_text(tokens: TokenStream) -> String {
    truncate(compact(tokens))
}

/// `tokens` rendered compactly.
pub(crate) fn compact(tokens: TokenStream) -> String {
    let mut printer = Printer::default();
    printer.stream(tokens);
    printer.out
}

fn truncate(text: String) -> String {
    if text.chars().count() <= MAX_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

#[derive(Default)]
struct Printer {
    out: String,
    /// A space goes before the next token unless that token is tight on its left.
    space: bool,
    /// The last token ended an operand (`x`, `1`, `)`, `?`), so `&`/`-`/`*`/`|` next are binary
    /// and `(`/`[` next are a call/index.
    operand: bool,
    /// The last token was a non-keyword identifier, so a `!` next is a macro call.
    ident: bool,
    /// Depth of `<..>` opened after `::` (turbofish).
    generics: usize,
    /// Inside `|params|` of a closure.
    closure_params: bool,
}

impl Printer {
    fn stream(&mut self, tokens: TokenStream) {
        let mut tokens = tokens.into_iter().peekable();
        while let Some(token) = tokens.next() {
            match token {
                TokenTree::Ident(ident) => {
                    let word = ident.to_string();
                    self.word(&word, !is_keyword(&word) || is_value_keyword(&word));
                    self.ident = !is_keyword(&word);
                }
                TokenTree::Literal(lit) => self.word(&lit.to_string(), true),
                TokenTree::Group(group) => self.group(group.delimiter(), group.stream()),
                TokenTree::Punct(first) => {
                    // `'a` is a joint `'` and an identifier: keep them together.
                    if first.as_char() == '\'' {
                        self.push_spaced("'");
                        self.space = false;
                        self.operand = false;
                        self.ident = false;
                        continue;
                    }
                    // A run of joint puncts (`::<`, `?.`, `>>::`) is split into operators.
                    let mut run = String::from(first.as_char());
                    let mut spacing = first.spacing();
                    while spacing == Spacing::Joint {
                        match tokens.peek() {
                            Some(TokenTree::Punct(next)) if next.as_char() != '\'' => {
                                run.push(next.as_char());
                                spacing = next.spacing();
                                tokens.next();
                            }
                            _ => break,
                        }
                    }
                    let mut rest = run.as_str();
                    while !rest.is_empty() {
                        let len = operator_len(rest);
                        self.punct(&rest[..len]);
                        rest = &rest[len..];
                    }
                }
            }
        }
    }

    fn word(&mut self, word: &str, operand: bool) {
        self.push_spaced(word);
        self.space = true;
        self.operand = operand;
        self.ident = false;
    }

    fn group(&mut self, delimiter: Delimiter, inner: TokenStream) {
        match delimiter {
            // Invisible groups come from macro_rules fragments: print their tokens in place.
            Delimiter::None => return self.stream(inner),
            Delimiter::Parenthesis | Delimiter::Bracket => {
                let (open, close) = match delimiter {
                    Delimiter::Parenthesis => ('(', ')'),
                    _ => ('[', ']'),
                };
                if self.space && !self.operand {
                    self.out.push(' ');
                }
                self.out.push(open);
                self.out.push_str(&compact(inner));
                self.out.push(close);
            }
            Delimiter::Brace => {
                let inner = compact(inner);
                if inner.is_empty() {
                    self.push_spaced("{}");
                } else {
                    self.push_spaced("{ ");
                    self.out.push_str(&inner);
                    self.out.push_str(" }");
                }
            }
        }
        self.space = true;
        self.operand = true;
        self.ident = false;
    }

    fn punct(&mut self, op: &str) {
        let unary = !self.operand;
        let after_ident = self.ident;
        self.ident = false;
        match op {
            "." => self.tight(op),
            // `a::b`, `0..n` are tight; `f(a, ::std::x)` and `S { a, ..s }` keep their space.
            "::" | ".." | "..=" if self.operand || after_ident => self.tight(op),
            "::" | ".." | "..=" => self.prefix(op),
            "?" => {
                self.out.push_str(op);
                self.space = true;
                self.operand = true;
            }
            "," | ";" | ":" => {
                self.out.push_str(op);
                self.space = true;
                self.operand = false;
            }
            "<" if self.generics > 0 || self.out.ends_with("::") => {
                self.out.push('<');
                self.generics += 1;
                self.space = false;
                self.operand = false;
            }
            _ if self.generics > 0 && op.starts_with('>') => {
                let closes = op.chars().take_while(|&c| c == '>').count();
                self.generics = self.generics.saturating_sub(closes);
                self.out.push_str(op);
                self.space = true;
                self.operand = true;
            }
            "!" if after_ident => self.tight(op),
            "!" => self.prefix(op),
            "&" | "&&" | "*" | "-" if unary => self.prefix(op),
            "|" if self.closure_params => {
                self.out.push('|');
                self.closure_params = false;
                self.space = true;
                self.operand = false;
            }
            "|" if unary => {
                self.prefix(op);
                self.closure_params = true;
            }
            "||" if unary => {
                self.push_spaced(op);
                self.space = true;
                self.operand = false;
            }
            "#" => self.prefix(op),
            _ => {
                if !self.out.is_empty() {
                    self.out.push(' ');
                }
                self.out.push_str(op);
                self.space = true;
                self.operand = false;
            }
        }
    }

    fn tight(&mut self, op: &str) {
        self.out.push_str(op);
        self.space = false;
        self.operand = false;
    }

    fn prefix(&mut self, op: &str) {
        self.push_spaced(op);
        self.space = false;
        self.operand = false;
    }

    fn push_spaced(&mut self, text: &str) {
        if self.space && !self.out.is_empty() {
            self.out.push(' ');
        }
        self.out.push_str(text);
    }
}

/// Length of the operator `run` starts with (all puncts are ASCII).
fn operator_len(run: &str) -> usize {
    const OPS: [&str; 24] = [
        "...", "..=", "<<=", ">>=", "::", "->", "=>", "==", "!=", "<=", ">=", "&&", "||", "+=",
        "-=", "*=", "/=", "%=", "^=", "&=", "|=", "<<", ">>", "..",
    ];
    OPS.iter()
        .find(|op| run.starts_with(*op))
        .map_or(1, |op| op.len())
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "as" | "async"
            | "await"
            | "break"
            | "const"
            | "continue"
            | "crate"
            | "dyn"
            | "else"
            | "enum"
            | "extern"
            | "false"
            | "fn"
            | "for"
            | "if"
            | "impl"
            | "in"
            | "let"
            | "loop"
            | "match"
            | "mod"
            | "move"
            | "mut"
            | "pub"
            | "ref"
            | "return"
            | "self"
            | "Self"
            | "static"
            | "struct"
            | "super"
            | "trait"
            | "true"
            | "type"
            | "unsafe"
            | "use"
            | "where"
            | "while"
            | "yield"
    )
}

/// Keywords that end an operand: `self - 1`, `x.await * 2`.
fn is_value_keyword(word: &str) -> bool {
    matches!(
        word,
        "self" | "Self" | "super" | "crate" | "true" | "false" | "await"
    )
}

#[cfg(test)]
mod tests {
    use super::{compact, site_text};
    use proc_macro2::TokenStream;

    fn show(src: &str) -> String {
        compact(src.parse::<TokenStream>().unwrap())
    }

    #[test]
    fn paths_fields_and_calls_are_tight() {
        assert_eq!(
            show("self . client . get ( & url ) . send ( )"),
            "self.client.get(&url).send()"
        );
        assert_eq!(
            show("tokio::time::sleep(Duration::from_secs(5))"),
            "tokio::time::sleep(Duration::from_secs(5))"
        );
        assert_eq!(show("::std::future::ready(1)"), "::std::future::ready(1)");
        assert_eq!(show("a[0].b"), "a[0].b");
    }

    #[test]
    fn commas_and_operators() {
        assert_eq!(show("f(a,b , c)"), "f(a, b, c)");
        assert_eq!(show("f(a+1, b*c, d==e)"), "f(a + 1, b * c, d == e)");
        assert_eq!(
            show("f(x, &mut y, *z, -1, !done)"),
            "f(x, &mut y, *z, -1, !done)"
        );
        assert_eq!(show("a & b"), "a & b");
        assert_eq!(show("(a) - (b)"), "(a) - (b)");
        assert_eq!(show("&&x"), "&&x");
        assert_eq!(show("a && b || c"), "a && b || c");
        assert_eq!(show("x as u64"), "x as u64");
        assert_eq!(show("0..n"), "0..n");
        assert_eq!(show("self - 1"), "self - 1");
    }

    #[test]
    fn try_await_and_macros() {
        assert_eq!(show("conn.query(q)?.rows()"), "conn.query(q)?.rows()");
        assert_eq!(show("a.await?.b().await"), "a.await?.b().await");
        assert_eq!(
            show("f(vec![1, 2], format!(\"{}\", x))"),
            "f(vec![1, 2], format!(\"{}\", x))"
        );
        assert_eq!(show("tokio::join!(a(), b())"), "tokio::join!(a(), b())");
    }

    #[test]
    fn generics_closures_blocks_lifetimes() {
        assert_eq!(show("Vec::<u8>::new()"), "Vec::<u8>::new()");
        assert_eq!(
            show("iter.collect::<Vec<Vec<u8>>>()"),
            "iter.collect::<Vec<Vec<u8>>>()"
        );
        assert_eq!(show("HashMap::<K, V>::new()"), "HashMap::<K, V>::new()");
        assert_eq!(show("a < b"), "a < b");
        assert_eq!(show("f(|x| x + 1)"), "f(|x| x + 1)");
        assert_eq!(show("f(move |a, b| a)"), "f(move |a, b| a)");
        assert_eq!(show("f(|| async {})"), "f(|| async {})");
        assert_eq!(
            show("timeout(d, async move { rx.recv().await })"),
            "timeout(d, async move { rx.recv().await })"
        );
        assert_eq!(
            show("S { a: 1, ..Default::default() }"),
            "S { a: 1, ..Default::default() }"
        );
        assert_eq!(show("f::<'static>(x)"), "f::<'static>(x)");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        let long = "client.get(\"https://example.com/a/very/long/path/that/goes/on\").send()";
        let text = site_text(long.parse().unwrap());
        assert_eq!(text.chars().count(), 60);
        assert!(text.ends_with('…'));
        assert!(text.starts_with("client.get(\"https://example.com/"));
        let short = site_text("a.b()".parse().unwrap());
        assert_eq!(short, "a.b()");
        let exact: String = "x".repeat(60);
        assert_eq!(site_text(exact.parse().unwrap()), exact);
    }
}
