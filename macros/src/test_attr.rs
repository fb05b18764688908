//! Code generation for `#[taskprof::test]`: `#[tokio::test]` plus a leak check.
//!
//! ```text
//! #[taskprof::test(grace = "500ms")]
//! async fn name() -> RET { BODY }
//! ```
//! becomes
//! ```text
//! #[::core::prelude::v1::test]
//! fn name() -> RET {
//!     let __taskprof_body = async move {
//!         if false { let r: RET = loop {}; return r; }  // fixes the block's output type
//!         { BODY' }                                     // spawns rewritten as in `#[track]`
//!     };
//!     let __taskprof_rt = ::tokio::runtime::Builder::new_current_thread()
//!         .enable_all()
//!         .build()
//!         .expect("taskprof::test: failed to build the tokio runtime");
//!     ::taskprof::__private::run_test(
//!         __taskprof_rt,
//!         ::taskprof::LeakCheck::new().grace(::core::time::Duration::from_nanos(500000000)),
//!         __taskprof_body,
//!     )
//! }
//! ```
//!
//! The runtime is built in the user's crate, as `#[tokio::test]` does, so the user's tokio
//! features apply (`start_paused` needs tokio's `test-util`).
#![forbid(unsafe_code)]

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::visit_mut::VisitMut;
use syn::{AttrStyle, Attribute, Error, Ident, Item, ItemFn};

use crate::expand::fake_return;
use crate::rewrite::Rewriter;
use crate::test_args::{Flavor, Ignore, TestArgs};

/// `#[taskprof::test(args)] item`.
///
/// On any error the user's function is emitted as written, without `#[test]` (so a wrong
/// signature causes no second error), followed by every error found.
pub(crate) fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match parse_fn(item.clone()) {
        Ok(func) => func,
        Err(error) => {
            let error = error.to_compile_error();
            return quote!(#item #error);
        }
    };
    let args = syn::parse2::<TestArgs>(args);
    let shape = check_fn(&func);
    match (args, shape) {
        (Ok(args), Ok(())) => expand(&args, func),
        (args, shape) => {
            let mut errors = args.err().into_iter().chain(shape.err());
            let mut error = errors.next().expect("one side failed");
            errors.for_each(|e| error.combine(e));
            let error = error.to_compile_error();
            // Without its test attributes: a second `#[test]` on this fn would add an error of
            // its own ("async functions cannot be used for tests").
            let mut func = func;
            func.attrs.retain(|a| !is_test_attribute(a));
            // `dead_code`: nothing calls a test function, and this one is no test any more.
            quote!(#[allow(dead_code)] #func #error)
        }
    }
}

fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
    match syn::parse2::<Item>(item)? {
        Item::Fn(func) => Ok(func),
        other => {
            let span = other
                .into_token_stream()
                .into_iter()
                .find(|t| !matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'))
                .map_or_else(Span::call_site, |t| t.span());
            Err(Error::new(
                span,
                "`#[taskprof::test]` can only be applied to an `async fn`",
            ))
        }
    }
}

/// What `#[test]` on the generated function would reject, reported at the user's tokens.
fn check_fn(func: &ItemFn) -> syn::Result<()> {
    let mut errors: Vec<Error> = Vec::new();
    if let Some(attr) = func.attrs.iter().find(|a| is_test_attribute(a)) {
        errors.push(Error::new_spanned(
            attr,
            "second test attribute is supplied, consider removing or changing the order of your \
             test attributes",
        ));
    }
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        errors.push(Error::new(
            sig.fn_token.span,
            "the `async` keyword is missing from the function declaration",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(Error::new_spanned(
            &sig.generics,
            "the test function cannot have generic parameters",
        ));
    }
    if !sig.inputs.is_empty() {
        errors.push(Error::new_spanned(
            &sig.inputs,
            "the test function cannot accept arguments",
        ));
    }
    let mut errors = errors.into_iter();
    match errors.next() {
        None => Ok(()),
        Some(mut first) => {
            errors.for_each(|e| first.combine(e));
            Err(first)
        }
    }
}

/// `#[test]`, `#[core::prelude::v1::test]`, `#[tokio::test]`, `#[taskprof::test]`, ...
fn is_test_attribute(attr: &Attribute) -> bool {
    matches!(attr.style, AttrStyle::Outer)
        && attr
            .path()
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "test")
}

fn expand(args: &TestArgs, func: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = func;
    // The same spawn rewriting as `#[track]` on a non-async fn: spawns only, no await sites
    // (there is no `#[track]` frame for them to point at).
    let mut rewriter = Rewriter::new(false);
    let mut stmts = block.stmts;
    for stmt in &mut stmts {
        rewriter.visit_stmt_mut(stmt);
    }
    let imports = rewriter.imports();
    let fake_return = fake_return(&sig.output);
    sig.asyncness = None;

    let outer = attrs.iter().filter(|a| matches!(a.style, AttrStyle::Outer));
    let inner = attrs
        .iter()
        .filter(|a| matches!(a.style, AttrStyle::Inner(_)));
    let body = Ident::new("__taskprof_body", Span::mixed_site());
    let rt = Ident::new("__taskprof_rt", Span::mixed_site());
    let builder = runtime_builder(args);
    let check = leak_check(args);

    let mut tokens = quote! {
        #[::core::prelude::v1::test]
        #(#outer)*
        #vis #sig
    };
    block.brace_token.surround(&mut tokens, |tokens| {
        tokens.extend(quote! {
            // `#![..]` stays first in the fn body, where it applies to all of it.
            #(#inner)*
            #imports
            let #body = async move {
                #fake_return
                // Fresh braces: re-emitting the user's block would trip `unused_braces`.
                { #(#stmts)* }
            };
            let #rt = #builder;
            ::taskprof::__private::run_test(#rt, #check, #body)
        });
    });
    tokens
}

/// `::tokio::runtime::Builder::new_..()...build().expect(..)`, in the user's crate.
fn runtime_builder(args: &TestArgs) -> TokenStream {
    let new = match args.flavor {
        Flavor::CurrentThread => quote!(::tokio::runtime::Builder::new_current_thread()),
        Flavor::MultiThread => quote!(::tokio::runtime::Builder::new_multi_thread()),
    };
    // Spanned at the user's literal: a `usize` mismatch would be reported there.
    let workers = args.worker_threads.as_ref().map(|n| {
        let span = n.span();
        quote_spanned!(span=> .worker_threads(#n))
    });
    // Needs tokio's `test-util` feature, as with `#[tokio::test(start_paused = true)]`.
    let paused = args.start_paused.then(|| quote!(.start_paused(true)));
    quote! {
        #new
            #workers
            .enable_all()
            #paused
            .build()
            .expect("taskprof::test: failed to build the tokio runtime")
    }
}

/// `::taskprof::LeakCheck::new()` with the grace period and ignore rules of the arguments.
fn leak_check(args: &TestArgs) -> TokenStream {
    let grace = args
        .grace
        .as_ref()
        .map(|(nanos, _)| quote!(.grace(::core::time::Duration::from_nanos(#nanos))));
    let ignores = args.ignore.iter().map(|entry| match entry {
        Ignore::Fn(path) => quote!(.ignore_fn(#path)),
        Ignore::Site(site) => quote!(.ignore_site(#site)),
    });
    quote!(::taskprof::LeakCheck::new() #grace #(#ignores)*)
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        squash(&super::test(args, item).to_string())
    }

    fn squash(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    fn has(haystack: &str, needle: &str) -> bool {
        haystack.contains(&squash(needle))
    }

    #[test]
    fn default_expansion() {
        let out = expand(
            quote!(),
            quote! {
                /// Docs stay.
                #[should_panic(expected = "leaked tasks: 1")]
                async fn leaks() {
                    #![allow(unused)]
                    tokio::spawn(async {});
                    let _ = 1;
                }
            },
        );
        let head = squash(
            "#[::core::prelude::v1::test] #[doc = r\" Docs stay.\"] \
             #[should_panic(expected = \"leaked tasks: 1\")] fn leaks() { #![allow(unused)] \
             let __taskprof_body = async move {",
        );
        assert!(out.starts_with(&head), "{out}");
        assert!(has(&out, "let __taskprof_r: () = loop {};"), "{out}");
        assert!(
            has(
                &out,
                "tokio::spawn(::taskprof::__private::spawned(async {})); let _ = 1; } };"
            ),
            "{out}"
        );
        assert!(out.ends_with(&squash(
            "let __taskprof_rt = ::tokio::runtime::Builder::new_current_thread().enable_all()\
             .build().expect(\"taskprof::test: failed to build the tokio runtime\"); \
             ::taskprof::__private::run_test(__taskprof_rt, ::taskprof::LeakCheck::new(), \
             __taskprof_body) }"
        )));
        // Default grace: the runtime's own `LeakCheck::DEFAULT_GRACE`.
        assert!(!out.contains(".grace("), "{out}");
    }

    #[test]
    fn every_argument() {
        let out = expand(
            quote!(
                flavor = "multi_thread",
                worker_threads = 2,
                grace = "1.5s",
                ignore = ["a::b", "x.rs:3"]
            ),
            quote! {
                async fn t() -> Result<(), String> { Ok(()) }
            },
        );
        assert!(
            has(
                &out,
                "::tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all()\
                 .build()"
            ),
            "{out}"
        );
        assert!(
            has(
                &out,
                "::taskprof::LeakCheck::new()\
                 .grace(::core::time::Duration::from_nanos(1500000000u64))\
                 .ignore_fn(\"a::b\").ignore_site(\"x.rs:3\")"
            ),
            "{out}"
        );
        assert!(has(&out, "fn t() -> Result<(), String> {"), "{out}");
        assert!(
            has(&out, "let __taskprof_r: Result<(), String> = loop {};"),
            "{out}"
        );

        let out = expand(
            quote!(start_paused = true),
            quote!(
                async fn t() {}
            ),
        );
        assert!(
            has(
                &out,
                "new_current_thread().enable_all().start_paused(true).build()"
            ),
            "{out}"
        );
    }

    #[test]
    fn method_spawns_import_the_kind_traits() {
        let out = expand(
            quote!(),
            quote! {
                async fn t() {
                    let mut set = tokio::task::JoinSet::new();
                    set.spawn(async {});
                }
            },
        );
        assert!(
            has(
                &out,
                "fn t() { #[allow(unused_imports)] use ::taskprof::__private::{FutureKind as _, \
                 PassthroughKind as _}; let __taskprof_body"
            ),
            "{out}"
        );
    }

    #[test]
    fn errors_keep_the_item_without_test() {
        let out = expand(
            quote!(grace = "soon"),
            quote!(
                fn t(x: u8) {}
            ),
        );
        assert!(
            out.starts_with(&squash("#[allow(dead_code)] fn t(x: u8) {}")),
            "{out}"
        );
        assert!(!out.contains("prelude::v1::test"), "{out}");
        assert_eq!(out.matches("compile_error!").count(), 3, "{out}");
        assert!(has(&out, "invalid `grace` duration"), "{out}");
        assert!(has(
            &out,
            "the `async` keyword is missing from the function declaration"
        ));
        assert!(has(&out, "the test function cannot accept arguments"));

        let out = expand(
            quote!(),
            quote!(
                #[test]
                async fn t() {}
            ),
        );
        assert!(has(&out, "second test attribute is supplied"), "{out}");
        assert!(out.starts_with("#[allow(dead_code)]asyncfnt(){}"), "{out}");

        let out = expand(
            quote!(),
            quote!(
                struct S;
            ),
        );
        assert!(out.starts_with("structS;"), "{out}");
        assert!(has(
            &out,
            "`#[taskprof::test]` can only be applied to an `async fn`"
        ));
    }
}
