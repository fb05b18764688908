//! Code generation for `#[track]`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::visit_mut::{self, VisitMut};
use syn::{
    AttrStyle, Error, Ident, Item, ItemFn, LitStr, ReturnType, Signature, Stmt, TraitItemFn, Type,
    TypeInfer,
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
    let body = if is_async {
        framed_body(args, &sig, &stmts)
    } else {
        quote!(#(#stmts)*)
    };

    let outer = attrs.iter().filter(|a| matches!(a.style, AttrStyle::Outer));
    let inner = attrs
        .iter()
        .filter(|a| matches!(a.style, AttrStyle::Inner(_)));
    let mut tokens = quote!(#(#outer)* #vis #sig);
    block.brace_token.surround(&mut tokens, |tokens| {
        // `#![..]` stays first in the fn body, where it applies to all of it.
        tokens.extend(quote!(#(#inner)* #imports #body));
    });
    tokens
}

/// The body of a tracked `async fn`: its future, wrapped in a `Framed` frame.
fn framed_body(args: &Args, sig: &Signature, stmts: &[Stmt]) -> TokenStream {
    let ident = &sig.ident;
    let name = LitStr::new(&ident.unraw().to_string(), ident.span());
    // Spanned at the fn name, `Location::caller()` in a static is the definition site.
    let location = quote_spanned!(ident.span()=> ::core::panic::Location::caller());
    let name_override = match &args.name {
        Some(name) => quote!(::core::option::Option::Some(#name)),
        None => quote!(::core::option::Option::None),
    };
    let labels = args.labels.iter().map(|(k, v)| quote!((#k, #v)));
    // Methods are labelled `Type::method`; the type name is only known inside the impl, and
    // only as a function (it may be generic), so it is passed by value, not in the static.
    let type_name = match sig.receiver() {
        Some(_) => quote! {
            ::core::option::Option::Some(::core::any::type_name::<Self> as fn() -> &'static str)
        },
        None => quote!(::core::option::Option::None),
    };
    let fake_return = fake_return(&sig.output);
    let fut = Ident::new("__taskprof_fut", Span::mixed_site());
    quote! {
        static __TASKPROF_FN: ::taskprof::__private::FnSite = ::taskprof::__private::FnSite::new(
            #name,
            ::core::module_path!(),
            #location,
            #name_override,
            &[#(#labels),*],
        );
        // Before the future is built: a call between building it and moving it into the frame
        // costs a copy of it.
        ::taskprof::__private::Framed::<()>::label(&__TASKPROF_FN, #type_name);
        // `async move` captures the arguments (and `self`) under their own names. A fn may
        // return a future (a `JoinHandle`, say): that is the user's intent, not a missing
        // `.await` (clippy's deny-by-default `async_yields_async`).
        #[allow(clippy::async_yields_async)]
        let #fut = async move {
            #fake_return
            // Fresh braces: re-emitting the user's block would trip `unused_braces`.
            { #(#stmts)* }
        };
        ::taskprof::__private::Framed::new(&__TASKPROF_FN, #fut).await
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
