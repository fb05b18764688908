//! The attribute grammar: `#[track]`, `#[track(name = "..", label(key = "value", ..))]`.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Expr, ExprLit, Ident, Lit, LitStr, Token};

const EXPECTED: &str = "expected `name = \"...\"` or `label(key = \"value\", ...)`";

/// Parsed `#[track(..)]` arguments.
#[derive(Default)]
pub(crate) struct Args {
    /// `name = ".."`: replaces the frame label.
    pub(crate) name: Option<LitStr>,
    /// `label(key = "value", ..)`, keys as string literals (identifier keys are converted).
    pub(crate) labels: Vec<(LitStr, LitStr)>,
}

/// Collects every error of one parse instead of stopping at the first.
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut errors = Errors::default();
        let mut label_list: Option<Span> = None;
        while !input.is_empty() {
            if let Err(error) = args.parse_one(input, &mut label_list, &mut errors) {
                errors.push(error);
                skip_to_comma(input);
            }
            separator(input, &mut errors);
        }
        errors.finish(args)
    }
}

impl Args {
    fn parse_one(
        &mut self,
        input: ParseStream,
        label_list: &mut Option<Span>,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        if !input.peek(Ident::peek_any) {
            return Err(input.error(EXPECTED));
        }
        let key = input.call(Ident::parse_any)?;
        match key.to_string().as_str() {
            "name" => {
                let value = value_after_eq(input, key.span(), "expected `name = \"...\"`")?;
                let lit = string_literal(value, "`name` must be a string literal")?;
                if lit.value().trim().is_empty() {
                    return Err(Error::new(lit.span(), "`name` must not be empty"));
                }
                if self.name.is_some() {
                    return Err(Error::new(key.span(), "duplicate `name` argument"));
                }
                self.name = Some(lit);
            }
            "label" => {
                if !input.peek(syn::token::Paren) {
                    let at = if end_of_argument(input) {
                        key.span()
                    } else {
                        input.span()
                    };
                    return Err(Error::new(at, "expected `label(key = \"value\", ...)`"));
                }
                let content;
                syn::parenthesized!(content in input);
                if label_list.is_some() {
                    return Err(Error::new(
                        key.span(),
                        "duplicate `label(...)` list; put all labels in one list",
                    ));
                }
                *label_list = Some(key.span());
                while !content.is_empty() {
                    if let Err(error) = self.parse_label(&content) {
                        errors.push(error);
                        skip_to_comma(&content);
                    }
                    separator(&content, errors);
                }
            }
            other => {
                return Err(Error::new(
                    key.span(),
                    format!("unknown argument `{other}`; {EXPECTED}"),
                ));
            }
        }
        Ok(())
    }

    fn parse_label(&mut self, input: ParseStream) -> syn::Result<()> {
        let key = if input.peek(LitStr) {
            let key: LitStr = input.parse()?;
            check_suffix(&key)?;
            if key.value().is_empty() {
                return Err(Error::new(key.span(), "label keys must not be empty"));
            }
            key
        } else if input.peek(Ident::peek_any) {
            let ident = input.call(Ident::parse_any)?;
            LitStr::new(&ident.unraw().to_string(), ident.span())
        } else {
            return Err(input.error("expected a label key: an identifier or a string literal"));
        };
        let value = value_after_eq(input, key.span(), "expected `key = \"value\"`")?;
        let value = string_literal(value, "label values must be string literals")?;
        if self.labels.iter().any(|(k, _)| k.value() == key.value()) {
            return Err(Error::new(
                key.span(),
                format!("duplicate label key `{}`", key.value()),
            ));
        }
        self.labels.push((key, value));
        Ok(())
    }
}

/// `= <expr>` after `key`; the error points at `key` when nothing follows it.
fn value_after_eq(input: ParseStream, key: Span, expected: &str) -> syn::Result<Expr> {
    if end_of_argument(input) {
        return Err(Error::new(key, expected));
    }
    let eq: Token![=] = match input.parse() {
        Ok(eq) => eq,
        Err(_) => return Err(input.error(expected)),
    };
    if end_of_argument(input) {
        return Err(Error::new(eq.span, "expected a string literal after `=`"));
    }
    input.parse()
}

fn string_literal(value: Expr, message: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit),
            attrs,
        }) if attrs.is_empty() => {
            check_suffix(&lit)?;
            Ok(lit)
        }
        other => Err(Error::new_spanned(other, message)),
    }
}

fn check_suffix(lit: &LitStr) -> syn::Result<()> {
    if lit.suffix().is_empty() {
        Ok(())
    } else {
        Err(Error::new(
            lit.span(),
            "unexpected suffix on string literal",
        ))
    }
}

pub(crate) fn end_of_argument(input: ParseStream) -> bool {
    input.is_empty() || input.peek(Token![,])
}

/// After an argument: a `,` or the end; anything else is reported and skipped.
pub(crate) fn separator(input: ParseStream, errors: &mut Errors) {
    if input.is_empty() {
        return;
    }
    if input.parse::<Token![,]>().is_err() {
        errors.push(input.error("expected `,`"));
        skip_to_comma(input);
        let _ = input.parse::<Token![,]>();
    }
}

/// Skips the rest of a broken argument, so the next one is still checked.
pub(crate) fn skip_to_comma(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    });
}

#[cfg(test)]
mod tests {
    use super::Args;
    use quote::quote;

    fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<Args> {
        syn::parse2(tokens)
    }

    fn errors(tokens: proc_macro2::TokenStream) -> Vec<String> {
        match parse(tokens) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn empty_and_full() {
        let args = parse(quote!()).unwrap();
        assert!(args.name.is_none() && args.labels.is_empty());

        let args = parse(quote!(name = "db::load", label(kind = "io", "a.b" = "c"),)).unwrap();
        assert_eq!(args.name.unwrap().value(), "db::load");
        let labels: Vec<_> = args
            .labels
            .iter()
            .map(|(k, v)| (k.value(), v.value()))
            .collect();
        assert_eq!(
            labels,
            [("kind".into(), "io".into()), ("a.b".into(), "c".into())]
        );

        let args = parse(quote!(label(r#type = "x"))).unwrap();
        assert_eq!(args.labels[0].0.value(), "type");
    }

    #[test]
    fn bad_arguments() {
        assert_eq!(
            errors(quote!(nme = "x")),
            ["unknown argument `nme`; expected `name = \"...\"` or `label(key = \"value\", ...)`"]
        );
        assert_eq!(errors(quote!(name)), ["expected `name = \"...\"`"]);
        assert_eq!(
            errors(quote!(name = 5)),
            ["`name` must be a string literal"]
        );
        assert_eq!(errors(quote!(name = "")), ["`name` must not be empty"]);
        assert_eq!(
            errors(quote!(name = "a", name = "b")),
            ["duplicate `name` argument"]
        );
        assert_eq!(
            errors(quote!(label(a = "1"), label(b = "2"))),
            ["duplicate `label(...)` list; put all labels in one list"]
        );
        assert_eq!(
            errors(quote!(label(a = "1", a = "2"))),
            ["duplicate label key `a`"]
        );
        assert_eq!(
            errors(quote!(label(a = 1))),
            ["label values must be string literals"]
        );
        assert_eq!(
            errors(quote!(label = "x")),
            ["expected `label(key = \"value\", ...)`"]
        );
        assert_eq!(errors(quote!("x")), [super::EXPECTED]);
        assert_eq!(errors(quote!(name = "a" "b")), ["expected `,`"]);
    }

    #[test]
    fn every_problem_is_reported() {
        assert_eq!(
            errors(quote!(
                foo,
                name = 1,
                label(x = y, z),
                name = "ok",
                name = "again"
            )),
            [
                "unknown argument `foo`; expected `name = \"...\"` or `label(key = \"value\", ...)`",
                "`name` must be a string literal",
                "label values must be string literals",
                "expected `key = \"value\"`",
                "duplicate `name` argument",
            ]
        );
    }
}
