//! The attribute grammar of `#[taskprof::test]`: `#[tokio::test]`'s arguments plus `grace` and
//! `ignore`.
//!
//! ```text
//! #[taskprof::test(
//!     flavor = "multi_thread", worker_threads = 2,  // or "current_thread" (the default), which
//!                                                   // alone allows `start_paused = true`
//!     grace = "500ms",                              // ns, us, ms, s, m; decimals allowed
//!     ignore = ["my_crate::server::run", "server.rs:40"],
//! )]
//! ```
#![forbid(unsafe_code)]

use proc_macro2::Span;

use crate::args::{Errors, end_of_argument, separator, skip_to_comma};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Expr, ExprArray, ExprLit, Ident, Lit, LitBool, LitInt, LitStr, Token};

const EXPECTED: &str =
    "expected one of `flavor`, `worker_threads`, `start_paused`, `grace`, `ignore`";

const DURATION_HELP: &str =
    "expected a number followed by `ns`, `us`, `ms`, `s` or `m`, such as \"500ms\" or \"1.5s\"";

const IGNORE_HELP: &str = "`ignore` must be an array of string literals, such as \
     `ignore = [\"my_crate::server::run\", \"server.rs:40\"]`";

/// The runtime the test body runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    CurrentThread,
    MultiThread,
}

/// What a `#[taskprof::test]` should ignore: a function path or a `file.rs[:LINE]` site.
pub(crate) enum Ignore {
    /// `"my_crate::server::run"` → `LeakCheck::ignore_fn`.
    Fn(LitStr),
    /// `"server.rs:40"` → `LeakCheck::ignore_site`.
    Site(LitStr),
}

/// Parsed `#[taskprof::test(..)]` arguments.
pub(crate) struct TestArgs {
    pub(crate) flavor: Flavor,
    /// `worker_threads = N`, only with the multi-thread flavor.
    pub(crate) worker_threads: Option<LitInt>,
    pub(crate) start_paused: bool,
    /// `grace = ".."` in nanoseconds, with the literal it came from.
    pub(crate) grace: Option<(u64, LitStr)>,
    pub(crate) ignore: Vec<Ignore>,
}

impl Default for TestArgs {
    fn default() -> Self {
        Self {
            flavor: Flavor::CurrentThread,
            worker_threads: None,
            start_paused: false,
            grace: None,
            ignore: Vec::new(),
        }
    }
}

/// The keys seen so far, for duplicate and cross-argument checks.
#[derive(Default)]
struct Seen {
    flavor: Option<Span>,
    worker_threads: Option<Span>,
    start_paused: Option<Span>,
    grace: Option<Span>,
    ignore: Option<Span>,
}

impl Parse for TestArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = TestArgs::default();
        let mut errors = Errors::default();
        let mut seen = Seen::default();
        while !input.is_empty() {
            if let Err(error) = args.parse_one(input, &mut seen, &mut errors) {
                errors.push(error);
                skip_to_comma(input);
            }
            separator(input, &mut errors);
        }
        // As in tokio: worker threads only make sense on the multi-thread runtime, and tokio can
        // pause time only on a current-thread one.
        if let Some(span) = seen.worker_threads
            && args.flavor == Flavor::CurrentThread
        {
            errors.push(Error::new(
                span,
                "`worker_threads` requires the multi-thread runtime: add \
                 `flavor = \"multi_thread\"`",
            ));
        }
        if let Some(span) = seen.start_paused
            && args.start_paused
            && args.flavor == Flavor::MultiThread
        {
            errors.push(Error::new(
                span,
                "`start_paused = true` requires the current-thread runtime: tokio can only \
                 pause time with `flavor = \"current_thread\"`",
            ));
        }
        errors.finish(args)
    }
}

impl TestArgs {
    fn parse_one(
        &mut self,
        input: ParseStream,
        seen: &mut Seen,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        if !input.peek(Ident::peek_any) {
            return Err(input.error(EXPECTED));
        }
        let key = input.call(Ident::parse_any)?;
        let name = key.to_string();
        let slot = match name.as_str() {
            "flavor" => &mut seen.flavor,
            "worker_threads" => &mut seen.worker_threads,
            "start_paused" => &mut seen.start_paused,
            "grace" => &mut seen.grace,
            "ignore" => &mut seen.ignore,
            "crate" | "unhandled_panic" => {
                return Err(Error::new(
                    key.span(),
                    format!("`{name}` is not supported by `#[taskprof::test]`"),
                ));
            }
            other => {
                return Err(Error::new(
                    key.span(),
                    format!("unknown argument `{other}`; {EXPECTED}"),
                ));
            }
        };
        let value = value_after_eq(input, &key)?;
        if slot.is_some() {
            return Err(Error::new(
                key.span(),
                format!("duplicate `{name}` argument"),
            ));
        }
        *slot = Some(key.span());
        match name.as_str() {
            "flavor" => {
                let lit = string_literal(
                    value,
                    "`flavor` must be a string literal: \"current_thread\" or \"multi_thread\"",
                )?;
                self.flavor = match lit.value().as_str() {
                    "current_thread" => Flavor::CurrentThread,
                    "multi_thread" => Flavor::MultiThread,
                    other => {
                        return Err(Error::new(
                            lit.span(),
                            format!(
                                "unknown flavor `{other}`; expected \"current_thread\" or \
                                 \"multi_thread\""
                            ),
                        ));
                    }
                };
            }
            "worker_threads" => {
                let lit = match value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Int(lit),
                        attrs,
                    }) if attrs.is_empty() => lit,
                    other => {
                        return Err(Error::new_spanned(
                            other,
                            "`worker_threads` must be an integer literal",
                        ));
                    }
                };
                match lit.base10_parse::<usize>() {
                    Ok(0) => {
                        return Err(Error::new(
                            lit.span(),
                            "`worker_threads` must be greater than 0",
                        ));
                    }
                    Ok(_) => self.worker_threads = Some(lit),
                    Err(e) => return Err(Error::new(lit.span(), e)),
                }
            }
            "start_paused" => match value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(LitBool { value, .. }),
                    attrs,
                }) if attrs.is_empty() => self.start_paused = value,
                other => {
                    return Err(Error::new_spanned(
                        other,
                        "`start_paused` must be `true` or `false`",
                    ));
                }
            },
            "grace" => {
                let lit = string_literal(
                    value,
                    "`grace` must be a string literal such as \"500ms\" or \"1.5s\"",
                )?;
                let nanos = parse_duration(&lit.value()).map_err(|why| {
                    Error::new(
                        lit.span(),
                        format!("invalid `grace` duration {:?}: {why}", lit.value()),
                    )
                })?;
                self.grace = Some((nanos, lit));
            }
            "ignore" => self.ignore = parse_ignore(value, errors)?,
            _ => unreachable!("every key with a slot is handled"),
        }
        Ok(())
    }
}

/// `["a::b", "file.rs:12"]`: every entry is checked; bad ones are reported and skipped.
fn parse_ignore(value: Expr, errors: &mut Errors) -> syn::Result<Vec<Ignore>> {
    let elems = match value {
        Expr::Array(ExprArray { elems, attrs, .. }) if attrs.is_empty() => elems,
        other => return Err(Error::new_spanned(other, IGNORE_HELP)),
    };
    let mut out = Vec::new();
    for elem in elems {
        let lit = match string_literal(elem, IGNORE_HELP) {
            Ok(lit) => lit,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match classify_ignore(&lit.value()) {
            Ok(true) => out.push(Ignore::Site(lit)),
            Ok(false) => out.push(Ignore::Fn(lit)),
            Err(why) => errors.push(Error::new(lit.span(), why)),
        }
    }
    Ok(out)
}

/// `Ok(true)` for a site (`file.rs` or `file.rs:LINE`), `Ok(false)` for a function path.
pub(crate) fn classify_ignore(entry: &str) -> Result<bool, &'static str> {
    if entry.trim().is_empty() {
        return Err("`ignore` entries must not be empty");
    }
    if !entry.contains(".rs") {
        return Ok(false);
    }
    if entry.ends_with(".rs") {
        return Ok(true);
    }
    match entry.rsplit_once(':') {
        Some((file, line))
            if file.ends_with(".rs") && !line.is_empty() && line.parse::<u32>().is_ok() =>
        {
            Ok(true)
        }
        _ => Err("a site to ignore must be `file.rs` or `file.rs:LINE`, such as \"server.rs:40\""),
    }
}

/// Parses `"1s"`, `"250ms"`, `"1.5s"`, ... into nanoseconds, exactly (no floating point).
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    // Longest suffixes first: "ms" before "m" and "s".
    const UNITS: [(&str, u64); 5] = [
        ("ns", 1),
        ("us", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
    ];
    let Some((number, unit)) = UNITS
        .iter()
        .find_map(|(suffix, nanos)| text.strip_suffix(suffix).map(|n| (n, *nanos)))
    else {
        return Err(DURATION_HELP.to_owned());
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let decimal_point = number.contains('.');
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || (decimal_point && fraction.is_empty())
    {
        return Err(DURATION_HELP.to_owned());
    }
    let too_large = || "the duration is too large (at most u64::MAX nanoseconds)".to_owned();
    let whole: u64 = whole.parse().map_err(|_| too_large())?;
    let mut nanos = whole.checked_mul(unit).ok_or_else(too_large)?;
    // fraction / 10^len * unit, which must come out whole.
    let fraction = fraction.trim_end_matches('0');
    if !fraction.is_empty() {
        let scale = u32::try_from(fraction.len())
            .ok()
            .and_then(|len| 10u128.checked_pow(len))
            .ok_or_else(|| "too many decimal places".to_owned())?;
        let numerator = fraction
            .parse::<u128>()
            .ok()
            .and_then(|f| f.checked_mul(u128::from(unit)))
            .ok_or_else(|| "too many decimal places".to_owned())?;
        if numerator % scale != 0 {
            return Err("the duration is not a whole number of nanoseconds".to_owned());
        }
        let extra = u64::try_from(numerator / scale).map_err(|_| too_large())?;
        nanos = nanos.checked_add(extra).ok_or_else(too_large)?;
    }
    Ok(nanos)
}

/// `= <expr>` after `key`; the error points at `key` when nothing follows it.
fn value_after_eq(input: ParseStream, key: &Ident) -> syn::Result<Expr> {
    let expected = format!("expected `{key} = ...`");
    if end_of_argument(input) {
        return Err(Error::new(key.span(), expected));
    }
    let eq: Token![=] = match input.parse() {
        Ok(eq) => eq,
        Err(_) => return Err(input.error(expected)),
    };
    if end_of_argument(input) {
        return Err(Error::new(eq.span, "expected a value after `=`"));
    }
    input.parse()
}

fn string_literal(value: Expr, message: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit),
            attrs,
        }) if attrs.is_empty() => {
            if lit.suffix().is_empty() {
                Ok(lit)
            } else {
                Err(Error::new(
                    lit.span(),
                    "unexpected suffix on string literal",
                ))
            }
        }
        other => Err(Error::new_spanned(other, message)),
    }
}

#[cfg(test)]
mod tests {
    use super::{Flavor, Ignore, TestArgs, classify_ignore, parse_duration};
    use quote::quote;

    fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<TestArgs> {
        syn::parse2(tokens)
    }

    fn errors(tokens: proc_macro2::TokenStream) -> Vec<String> {
        match parse(tokens) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn durations() {
        let ok = [
            ("0s", 0),
            ("1ns", 1),
            ("7us", 7_000),
            ("250ms", 250_000_000),
            ("1s", 1_000_000_000),
            ("1.5s", 1_500_000_000),
            ("0.001s", 1_000_000),
            ("1.50s", 1_500_000_000),
            ("2m", 120_000_000_000),
            ("0.5m", 30_000_000_000),
            ("1.5us", 1_500),
            ("18446744073709551615ns", u64::MAX),
        ];
        for (text, nanos) in ok {
            assert_eq!(parse_duration(text), Ok(nanos), "{text}");
        }
        let bad = [
            "",
            "s",
            "5",
            "5 parsecs",
            "5 s",
            " 5s",
            "-1s",
            "+1s",
            "1.s",
            ".5s",
            "1.5.5s",
            "1e3ms",
            "5h",
            "1.5ns",
            "18446744073709551616ns",
            "18446744073709551615s",
            "99999999999999999999999999m",
            "0.00000000000000000000000000000000000000001s",
        ];
        for text in bad {
            assert!(parse_duration(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn ignore_entries() {
        assert_eq!(classify_ignore("a::b"), Ok(false));
        assert_eq!(classify_ignore("run"), Ok(false));
        assert_eq!(classify_ignore("server.rs"), Ok(true));
        assert_eq!(classify_ignore("src/server.rs:40"), Ok(true));
        assert!(classify_ignore("").is_err());
        assert!(classify_ignore("server.rs:").is_err());
        assert!(classify_ignore("server.rs:x").is_err());
        assert!(classify_ignore("server.rs:40:3").is_err());
    }

    #[test]
    fn defaults_and_full() {
        let args = parse(quote!()).unwrap();
        assert_eq!(args.flavor, Flavor::CurrentThread);
        assert!(args.worker_threads.is_none() && !args.start_paused);
        assert!(args.grace.is_none() && args.ignore.is_empty());

        let args = parse(quote!(
            flavor = "multi_thread",
            worker_threads = 4,
            grace = "1.5s",
            ignore = ["a::b", "x.rs:3", "y.rs"],
        ))
        .unwrap();
        assert_eq!(args.flavor, Flavor::MultiThread);
        assert_eq!(args.worker_threads.unwrap().base10_digits(), "4");
        assert_eq!(args.grace.unwrap().0, 1_500_000_000);
        let kinds: Vec<_> = args
            .ignore
            .iter()
            .map(|i| match i {
                Ignore::Fn(l) => format!("fn {}", l.value()),
                Ignore::Site(l) => format!("site {}", l.value()),
            })
            .collect();
        assert_eq!(kinds, ["fn a::b", "site x.rs:3", "site y.rs"]);

        let args = parse(quote!(start_paused = true, flavor = "current_thread")).unwrap();
        assert!(args.start_paused);
        let args = parse(quote!(flavor = "multi_thread", start_paused = false)).unwrap();
        assert!(!args.start_paused);
    }

    #[test]
    fn bad_arguments() {
        assert_eq!(
            errors(quote!(flavour = "x")),
            [format!("unknown argument `flavour`; {}", super::EXPECTED)]
        );
        assert_eq!(
            errors(quote!(flavor = "single")),
            ["unknown flavor `single`; expected \"current_thread\" or \"multi_thread\""]
        );
        assert_eq!(
            errors(quote!(flavor = multi_thread)),
            ["`flavor` must be a string literal: \"current_thread\" or \"multi_thread\""]
        );
        assert_eq!(
            errors(quote!(worker_threads = 2)),
            ["`worker_threads` requires the multi-thread runtime: add `flavor = \"multi_thread\"`"]
        );
        assert_eq!(
            errors(quote!(flavor = "multi_thread", worker_threads = 0)),
            ["`worker_threads` must be greater than 0"]
        );
        assert_eq!(
            errors(quote!(flavor = "multi_thread", worker_threads = "2")),
            ["`worker_threads` must be an integer literal"]
        );
        assert_eq!(
            errors(quote!(flavor = "multi_thread", start_paused = true)),
            [
                "`start_paused = true` requires the current-thread runtime: tokio can only pause \
                 time with `flavor = \"current_thread\"`"
            ]
        );
        assert_eq!(
            errors(quote!(start_paused = 1)),
            ["`start_paused` must be `true` or `false`"]
        );
        assert_eq!(
            errors(quote!(start_paused)),
            ["expected `start_paused = ...`"]
        );
        assert_eq!(
            errors(quote!(grace = "5 parsecs")),
            [format!(
                "invalid `grace` duration \"5 parsecs\": {}",
                super::DURATION_HELP
            )]
        );
        assert_eq!(
            errors(quote!(grace = 5)),
            ["`grace` must be a string literal such as \"500ms\" or \"1.5s\""]
        );
        assert_eq!(
            errors(quote!(grace = "1s", grace = "2s")),
            ["duplicate `grace` argument"]
        );
        assert_eq!(errors(quote!(ignore = "a::b")), [super::IGNORE_HELP]);
        assert_eq!(
            errors(quote!(ignore = ["a", 1, "x.rs:y"])),
            [
                super::IGNORE_HELP,
                "a site to ignore must be `file.rs` or `file.rs:LINE`, such as \"server.rs:40\""
            ]
        );
        assert_eq!(
            errors(quote!(crate = "tokio")),
            ["`crate` is not supported by `#[taskprof::test]`"]
        );
        assert_eq!(errors(quote!(grace = "1s" flavor)), ["expected `,`"]);
    }

    #[test]
    fn every_problem_is_reported() {
        assert_eq!(
            errors(quote!(
                foo = 1,
                grace = "x",
                flavor = "multi_thread",
                flavor = "current_thread",
                start_paused = true
            )),
            [
                format!("unknown argument `foo`; {}", super::EXPECTED),
                format!("invalid `grace` duration \"x\": {}", super::DURATION_HELP),
                "duplicate `flavor` argument".to_owned(),
                "`start_paused = true` requires the current-thread runtime: tokio can only pause \
                 time with `flavor = \"current_thread\"`"
                    .to_owned(),
            ]
        );
    }
}
