//! Code generation for `#[track]`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::visit_mut::{self, VisitMut};
use syn::{
    AttrStyle, Attribute, Error, FnArg, Ident, Item, ItemFn, LitStr, Pat, PatIdent, ReturnType,
    Signature, Stmt, TraitItemFn, Type, TypeInfer, Visibility,
};

use crate::args::Args;
use crate::rewrite::Rewriter;

const NOT_A_FN: &str = "`#[taskprof::track]` can only be applied to functions";

/// `#[track(args)] item`.
///
/// On any error the user's item is emitted unchanged, followed by the errors, so the rest of the
/// crate (and the IDE) still sees it.
pub(crate) fn track(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = syn::parse2::<Args>(args);
    let func = parse_fn(item.clone());
    match (args, func) {
        (Ok(args), Ok(func)) => expand(&args, func),
        (args, func) => {
            let mut errors = args.err().into_iter().chain(func.err());
            let mut error = errors.next().expect("one side failed");
            errors.for_each(|e| error.combine(e));
            let error = error.to_compile_error();
            quote!(#item #error)
        }
    }
}

fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
    match syn::parse2::<Item>(item)? {
        Item::Fn(func) => match func.sig.constness {
            Some(constness) => Err(Error::new(
                constness.span,
                "`#[taskprof::track]` cannot be applied to a `const fn`",
            )),
            None => Ok(func),
        },
        // A `fn` without a body (in a trait or an `extern` block) parses as verbatim tokens.
        Item::Verbatim(tokens) => match syn::parse2::<TraitItemFn>(tokens.clone()) {
            Ok(func) => Err(Error::new(
                func.sig.fn_token.span,
                "`#[taskprof::track]` needs a function body",
            )),
            Err(_) => Err(Error::new(first_span(tokens), NOT_A_FN)),
        },
        other => Err(Error::new(keyword_span(&other), NOT_A_FN)),
    }
}

/// The keyword that says what the item is: `struct`, `impl`, `static`, ...
fn keyword_span(item: &Item) -> Span {
    match item {
        Item::Const(i) => i.const_token.span,
        Item::Enum(i) => i.enum_token.span,
        Item::ExternCrate(i) => i.extern_token.span,
        Item::ForeignMod(i) => i.abi.extern_token.span,
        Item::Impl(i) => i.impl_token.span,
        Item::Macro(i) => first_span(i.mac.path.to_token_stream()),
        Item::Mod(i) => i.mod_token.span,
        Item::Static(i) => i.static_token.span,
        Item::Struct(i) => i.struct_token.span,
        Item::Trait(i) => i.trait_token.span,
        Item::TraitAlias(i) => i.trait_token.span,
        Item::Type(i) => i.type_token.span,
        Item::Union(i) => i.union_token.span,
        Item::Use(i) => i.use_token.span,
        other => first_span(other.to_token_stream()),
    }
}

/// The span of the first token, or the call site for no tokens.
pub(crate) fn first_span(tokens: TokenStream) -> Span {
    tokens
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

/// Rewrites the body only; attributes, visibility and signature are emitted as written.
fn expand(args: &Args, func: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let is_async = sig.asyncness.is_some();
    let mut rewriter = Rewriter::new(is_async);
    let mut stmts = block.stmts;
    for stmt in &mut stmts {
        rewriter.visit_stmt_mut(stmt);
    }
    let imports = rewriter.imports();
    let outer = attrs.iter().filter(|a| matches!(a.style, AttrStyle::Outer));
    let inner = attrs
        .iter()
        .filter(|a| matches!(a.style, AttrStyle::Inner(_)));
    // A frame whose type says `InFrame` is polled without its root path where another
    // `#[track]` body awaits it (see `InFrame` in the runtime). Not for a fn without `pub` that
    // takes `self` or names `Self`: it may be a trait's provided method, whose signature every
    // impl of the trait would then have to meet. (In a trait impl the bound refines the trait's
    // signature, which is allowed.)
    let in_frame = !matches!(vis, Visibility::Inherited)
        || (sig.receiver().is_none() && !names_self(sig.to_token_stream()));
    let refines = in_frame && matches!(vis, Visibility::Inherited);
    let returns_frame = is_async && returns_future(&sig, &attrs);
    let (sig, body) = if returns_frame {
        let output = sig.output.clone();
        let (sig, rebind) = future_sig(sig, in_frame);
        let body = framed_body(args, &sig, &output, Some(&rebind), &stmts);
        (sig, body)
    } else if is_async {
        let body = framed_body(args, &sig, &sig.output, None, &stmts);
        (sig, body)
    } else {
        (sig, quote!(#(#stmts)*))
    };

    // `Future<Output = ..> + InFrame` says the output where readers look for it (clippy would
    // have `impl InFrame<Output = ..>`).
    let allow = match (in_frame && returns_frame, refines) {
        (false, _) => TokenStream::new(),
        (true, false) => quote!(#[allow(clippy::implied_bounds_in_impls)]),
        (true, true) => {
            quote!(#[allow(refining_impl_trait, clippy::implied_bounds_in_impls)])
        }
    };
    let mut tokens = quote!(#(#outer)* #allow #vis #sig);
    block.brace_token.surround(&mut tokens, |tokens| {
        // `#![..]` stays first in the fn body, where it applies to all of it.
        tokens.extend(quote!(#(#inner)* #imports #body));
    });
    tokens
}

/// Whether `tokens` name `Self` anywhere.
fn names_self(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "Self",
        proc_macro2::TokenTree::Group(g) => names_self(g.stream()),
        _ => false,
    })
}

/// Whether the `async fn` can become a `fn` returning its frame: one state machine per call
/// instead of two (an `async fn` awaiting a frame around an `async` block), which halves what a
/// frame costs. Not when another attribute follows that may need the `async` (`#[tokio::main]`,
/// `#[instrument]`, ...), nor for an `unsafe` fn, whose body must stay an unsafe context.
fn returns_future(sig: &Signature, attrs: &[Attribute]) -> bool {
    const INERT: &[&str] = &[
        "doc",
        "inline",
        "cold",
        "allow",
        "warn",
        "deny",
        "forbid",
        "expect",
        "must_use",
        "deprecated",
        "cfg",
    ];
    let inert = |attr: &Attribute| {
        let path = attr.path();
        match path.segments.first() {
            Some(first) if path.segments.len() > 1 => {
                ["rustfmt", "clippy", "diagnostic"].contains(&first.ident.to_string().as_str())
            }
            Some(first) => INERT.contains(&first.ident.to_string().as_str()),
            None => false,
        }
    };
    sig.unsafety.is_none() && attrs.iter().all(inert)
}

/// `async fn f(PAT: T) -> R` becomes `fn f(ARG: T) -> impl Future<Output = R>`, and the
/// statements that move every argument into the future, as the `async fn` did: arguments live
/// until the future completes, and drop in the same order. Arguments with patterns other than
/// a plain name get a name in the signature and are destructured inside the future.
///
/// The `impl` token is ours, so the edition-2024 capture rules apply whatever edition the user's
/// crate has: like the `async fn`'s future, the returned one captures every lifetime in scope.
/// This test compiles as an edition-2021 crate, where a written `-> impl Future` would not
/// capture the elided lifetimes:
///
/// ```edition2021
/// struct Store(String);
///
/// impl Store {
///     #[taskprof::track]
///     async fn get(&self, suffix: &str) -> String {
///         tokio::task::yield_now().await;
///         format!("{}{suffix}", self.0)
///     }
///
///     #[taskprof::track]
///     async fn pick<'a>(&'a self, other: &'a str) -> &'a str {
///         if other.is_empty() { &self.0 } else { other }
///     }
/// }
///
/// #[taskprof::track]
/// async fn first_word(text: &str) -> &str {
///     tokio::task::yield_now().await;
///     text.split(' ').next().unwrap_or(text)
/// }
///
/// #[taskprof::track]
/// async fn shown(text: &str) -> impl std::fmt::Display + '_ {
///     text
/// }
///
/// #[taskprof::track]
/// async fn depth(n: u32) -> u32 {
///     if n == 0 { 0 } else { Box::pin(depth(n - 1)).await + 1 }
/// }
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let store = Store("ab".to_owned());
///     let text = String::from("hello world");
///     assert_eq!(store.get("c").await, "abc");
///     assert_eq!(store.pick("").await, "ab");
///     assert_eq!(first_word(&text).await, "hello");
///     assert_eq!(shown(&text).await.to_string(), "hello world");
///     assert_eq!(depth(5).await, 5);
/// });
/// ```
fn future_sig(mut sig: Signature, in_frame: bool) -> (Signature, TokenStream) {
    sig.asyncness = None;
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    let in_frame = in_frame.then(|| quote!(+ ::taskprof::__private::InFrame));
    sig.output = syn::parse_quote!(-> impl ::core::future::Future<Output = #output> #in_frame);
    let mut rebind = TokenStream::new();
    for (i, input) in sig.inputs.iter_mut().enumerate() {
        match input {
            // `self` can't be rebound; mentioning it moves it into the future.
            FnArg::Receiver(receiver) => {
                if receiver.reference.is_none() {
                    rebind.extend(quote!(let _ = &self;));
                }
            }
            FnArg::Typed(arg) => {
                let attrs = &arg.attrs;
                match &mut *arg.pat {
                    Pat::Ident(PatIdent {
                        by_ref: None,
                        mutability,
                        ident,
                        subpat: None,
                        ..
                    }) => {
                        let mutability = mutability.take();
                        rebind.extend(quote! {
                            #(#attrs)*
                            #[allow(clippy::redundant_locals)]
                            let #mutability #ident = #ident;
                        });
                    }
                    pat => {
                        let name = Ident::new(&format!("__taskprof_arg{i}"), Span::mixed_site());
                        let pat = std::mem::replace(
                            pat,
                            Pat::Ident(PatIdent {
                                attrs: Vec::new(),
                                by_ref: None,
                                mutability: None,
                                ident: name.clone(),
                                subpat: None,
                            }),
                        );
                        rebind.extend(quote! {
                            let #name = #name;
                            #(#attrs)*
                            let #pat = #name;
                        });
                    }
                }
            }
        }
    }
    (sig, rebind)
}

/// The body of a tracked `async fn` returning `output`: its future, wrapped in a `Framed` frame.
/// With `rebind` (see [`future_sig`]) the frame is returned, else awaited in the `async fn`.
fn framed_body(
    args: &Args,
    sig: &Signature,
    output: &ReturnType,
    rebind: Option<&TokenStream>,
    stmts: &[Stmt],
) -> TokenStream {
    let ident = &sig.ident;
    let name = LitStr::new(&ident.unraw().to_string(), ident.span());
    // Spanned at the fn name, `Location::caller()` in a static is the definition site.
    let location = quote_spanned!(ident.span()=> ::core::panic::Location::caller());
    let name_override = match &args.name {
        Some(name) => quote!(::core::option::Option::Some(#name)),
        None => quote!(::core::option::Option::None),
    };
    let labels = args.labels.iter().map(|(k, v)| quote!((#k, #v)));
    // A free function's label is known statically (its module and name) and is computed when
    // a snapshot first needs it. A method's (`Type::method`) needs `Self`, known only inside the
    // impl, and only as a function (the type may be generic), so each call passes it by value
    // before its future is built (a call between building the future and moving it into the
    // frame costs a copy of it).
    let label_it = sig.receiver().map(|_| {
        quote! {
            ::taskprof::__private::FnSite::label(
                &__TASKPROF_FN,
                ::core::any::type_name::<Self> as fn() -> &'static str,
            );
        }
    });
    // A frame with labels carries them (and applies them around its polls); one without has
    // no field for them.
    let constructor = match args.labels.is_empty() {
        true => Ident::new("new", Span::call_site()),
        false => Ident::new("labelled", Span::call_site()),
    };
    let fake_return = fake_return(output);
    let await_it = match rebind {
        Some(_) => TokenStream::new(),
        None => quote!(.await),
    };
    let fut = Ident::new("__taskprof_fut", Span::mixed_site());
    let site_type = Ident::new("__TaskprofFn", Span::mixed_site());
    quote! {
        static __TASKPROF_FN: ::taskprof::__private::FnSite = ::taskprof::__private::FnSite::new(
            #name,
            ::core::module_path!(),
            #location,
            #name_override,
            &[#(#labels),*],
        );
        // The site as a zero-sized type: frames carry no pointer to it.
        struct #site_type;
        impl ::taskprof::__private::FnSiteOf for #site_type {
            #[inline]
            fn site() -> &'static ::taskprof::__private::FnSite {
                &__TASKPROF_FN
            }
        }
        #label_it
        // `async move` captures the arguments (and `self`) under their own names. A fn may
        // return a future (a `JoinHandle`, say): that is the user's intent, not a missing
        // `.await` (clippy's deny-by-default `async_yields_async`).
        #[allow(clippy::async_yields_async)]
        let #fut = async move {
            #rebind
            #fake_return
            // Fresh braces: re-emitting the user's block would trip `unused_braces`.
            { #(#stmts)* }
        };
        ::taskprof::__private::Framed::#constructor(#site_type, #fut) #await_it
    }
}

/// `if false { let r: RET = loop {}; return r; }` fixes the async block's output type to the
/// declared return type before the body is checked, so `?` converts errors into it and
/// `Box::new(x)` coerces to a declared `Box<dyn Trait>`. `impl Trait` can't be written in a
/// `let`, so it becomes `_`.
pub(crate) fn fake_return(output: &ReturnType) -> TokenStream {
    let ty = match output {
        ReturnType::Default => quote!(()),
        // `let r: ! = ..` needs the unstable never type; `-> !` can't return anyway.
        ReturnType::Type(_, ty) if matches!(**ty, Type::Never(_)) => return TokenStream::new(),
        ReturnType::Type(_, ty) => {
            let mut ty = (**ty).clone();
            EraseImplTrait.visit_type_mut(&mut ty);
            ty.into_token_stream()
        }
    };
    let r = Ident::new("__taskprof_r", Span::mixed_site());
    quote! {
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let #r: #ty = loop {};
            return #r;
        }
    }
}

struct EraseImplTrait;

impl VisitMut for EraseImplTrait {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(impl_trait) = ty {
            *ty = Type::Infer(TypeInfer {
                underscore_token: syn::Token![_](impl_trait.impl_token.span),
            });
        } else {
            visit_mut::visit_type_mut(self, ty);
        }
    }
}

#[cfg(test)]
mod tests;
