//! The body visitor: `.await`s, spawn calls and `join!`/`select!` branches.
//!
//! Nested items (`fn`, `impl`, ...) are left alone: they are other functions, and a `#[track]` on
//! them expands on its own. Everything else is visited, including closures and async blocks.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Arm, Expr, ExprCall, ExprMatch, ExprMethodCall, ExprPath, Ident, Item, LitStr, Macro, Pat,
    Token, parse_quote, parse_quote_spanned, token,
};

use crate::expand::first_span;
use crate::print;

pub(crate) struct Rewriter {
    /// Record `.await`s and `join!`/`select!` branches: only in an `async fn`, whose frame
    /// (`__TASKPROF_FN`) the await sites point at.
    awaits: bool,
    /// A `.spawn(x)` / `.spawn_local(x)` method call was rewritten.
    spawn_kinds: bool,
    /// A `.spawn_blocking(f)` method call was rewritten.
    blocking_kinds: bool,
    /// A `.send()` / `.execute(r)` call was rewritten (maybe an HTTP request).
    http: bool,
    /// An `.await` on a call directly in the body dispatches on the future's type.
    await_kinds: bool,
    /// How many `async` blocks and closures enclose the expression being visited: an `.await`
    /// directly in the body (0) needs no drop code (see `InBody`).
    nested: u32,
}

impl Rewriter {
    pub(crate) fn new(awaits: bool) -> Self {
        Self {
            awaits,
            spawn_kinds: false,
            blocking_kinds: false,
            http: false,
            await_kinds: false,
            nested: 0,
        }
    }

    /// The traits the method-call spawn rewrites dispatch with, for the top of the fn body.
    ///
    /// They are imported there rather than in a block around each call: a block's tail would
    /// drop the argument's temporaries early (edition 2024), the bare `match` keeps them to the
    /// end of the user's statement, as before the rewrite.
    pub(crate) fn imports(&self) -> TokenStream {
        let mut kinds = Vec::new();
        if self.spawn_kinds {
            kinds.push(quote!(FutureKind as _,));
        }
        if self.blocking_kinds {
            kinds.push(quote!(BlockingKind as _,));
        }
        if self.http {
            kinds.push(quote!(HttpProbe as _, HttpExecProbe as _, NoHttpProbe as _,));
        }
        if self.await_kinds {
            kinds.push(quote!(FrameAwaitKind as _, AnyAwaitKind as _,));
        }
        if kinds.is_empty() {
            return TokenStream::new();
        }
        quote! {
            #[allow(unused_imports)]
            use ::taskprof::__private::{#(#kinds)* PassthroughKind as _};
        }
    }

    /// `E` → `await_point(&SITE, E)` (`await_in_body` for an `.await` directly in the body), with
    /// `SITE` taken from the expression before it was rewritten. The call spans from `E`'s first
    /// token to `end` (the `await` keyword, or `E`'s last token), so lints and errors on the
    /// whole `E.await` still quote the user's code.
    fn record(&mut self, expr: &mut Expr, end: Option<Span>, in_body: bool) {
        let site = Site::of(expr);
        let tokens = expr.to_token_stream();
        let start = first_span(tokens.clone());
        let end = end.unwrap_or_else(|| last_span(tokens));
        self.visit_expr_mut(expr);
        // The future of a call directly in the body may be a `#[track]` frame, polled then
        // without its root path (see `InFrame`); the type decides, so anything else is awaited
        // as before. Only calls: a `#[track]` frame comes from one, and a call's type is known
        // here (a macro's expansion or an uninferred variable might not be).
        let call = matches!(strip_parens(expr), Expr::Call(_) | Expr::MethodCall(_));
        let inner = std::mem::replace(expr, Expr::Verbatim(TokenStream::new()));
        *expr = match (in_body, call) {
            (true, true) => {
                self.await_kinds = true;
                site.await_frame(inner, start, end)
            }
            (true, false) => Expr::Call(site.await_point("await_in_body", inner, start, end)),
            (false, _) => Expr::Call(site.await_point("await_point", inner, start, end)),
        };
    }

    /// `tokio::spawn(A)`, `JoinSet::spawn(&mut set, A)`, ... → the same call on `spawned(A)`.
    fn path_spawn(&mut self, call: &mut ExprCall) {
        let Expr::Path(ExprPath {
            path, qself: None, ..
        }) = &*call.func
        else {
            return;
        };
        let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (index, wrapper) = match names.as_slice() {
            ["tokio", "spawn"] | ["tokio", "task", "spawn" | "spawn_local"] => (0, "spawned"),
            ["tokio", "task", "spawn_blocking"] => (0, "spawned_blocking"),
            [.., "JoinSet", "spawn" | "spawn_local"] => (1, "spawned"),
            [.., "JoinSet", "spawn_blocking"] => (1, "spawned_blocking"),
            _ => return,
        };
        if call.args.len() != index + 1 {
            return;
        }
        // The whole wrapping call carries the span of the user's path, so `#[track_caller]`
        // in `spawned` sees the user's spawn call.
        let span = first_span(path.to_token_stream());
        let wrapper = Ident::new(wrapper, span);
        let arg = &mut call.args[index];
        let inner = std::mem::replace(arg, Expr::Verbatim(TokenStream::new()));
        *arg = Expr::Call(ExprCall {
            attrs: Vec::new(),
            func: Box::new(parse_quote_spanned!(span=> ::taskprof::__private::#wrapper)),
            paren_token: token::Paren(span),
            args: Punctuated::from_iter([inner]),
        });
    }

    /// `recv.spawn(A)` on any receiver → `recv.spawn(match A { a => (&a).kind().wrap(a) })`:
    /// autoref specialization picks `FutureKind` (tracked) for futures and `PassthroughKind`
    /// (returned unchanged) for anything else, so user types with a `spawn` method still work.
    fn method_spawn(&mut self, call: &mut ExprMethodCall) {
        if call.args.len() != 1 {
            return;
        }
        // A closure is never a future, and binding it in the `match` would type-check it before
        // the method's parameter type can infer its arguments (`scope.spawn(|s| ..)`): leave
        // it as written. `spawn_blocking` closures take no arguments, so those are safe.
        let closure_inputs = match strip_parens(&call.args[0]) {
            Expr::Closure(closure) => Some(closure.inputs.len()),
            _ => None,
        };
        let kind = match call.method.to_string().as_str() {
            "spawn" | "spawn_local" if closure_inputs.is_none() => {
                self.spawn_kinds = true;
                quote!(__taskprof_spawn_kind)
            }
            "spawn_blocking" if closure_inputs.is_none_or(|n| n == 0) => {
                self.blocking_kinds = true;
                quote!(__taskprof_spawn_blocking_kind)
            }
            _ => return,
        };
        let span = call.method.span();
        let arg = Ident::new("__taskprof_arg", Span::mixed_site());
        // `wrap(..)` has the span of the user's method name: `#[track_caller]` reports the
        // start of the call's `fn_span`, which is the method name.
        let wrap = quote_spanned!(span=> wrap(#arg));
        let arm: Arm = parse_quote!(#arg => (&#arg).#kind().#wrap);
        let inner = std::mem::replace(&mut call.args[0], Expr::Verbatim(TokenStream::new()));
        call.args[0] = Expr::Match(ExprMatch {
            attrs: Vec::new(),
            match_token: Token![match](Span::call_site()),
            expr: Box::new(inner),
            brace_token: token::Brace(Span::call_site()),
            arms: vec![arm],
        });
    }

    /// `req.send()` and `client.execute(r)` may be HTTP requests: the call is wrapped so that,
    /// when the receiver is a reqwest builder or client (autoref dispatch on its type), the
    /// request's method, URL and timeout are read by reference before it is sent and the call
    /// becomes an HTTP frame; for any other type the call is returned exactly as written.
    ///
    /// `RECV.send()` → `(&RECV).__taskprof_http_probe().wrap(RECV.send())` when `RECV` is a
    /// place (a path or field), which is read twice; otherwise it is evaluated once, bound in a
    /// `match`.
    fn http_call(&mut self, expr: &mut Expr) {
        let Expr::MethodCall(call) = expr else { return };
        // The probe is `#[track_caller]`: spanned at the method name, it records the call site.
        let span = call.method.span();
        let probe = match (call.method.to_string().as_str(), call.args.len()) {
            ("send", 0) => Ident::new("__taskprof_http_probe", span),
            ("execute", 1) => Ident::new("__taskprof_http_exec_probe", span),
            _ => return,
        };
        // A receiver read twice must be a place; a temporary is bound once, which only keeps
        // its meaning when the call consumes it, as reqwest's `send(self)` does: so temporaries
        // are only taken when they look like a request being built (`client.get(u).send()`).
        let bind_recv = !is_place(&call.receiver);
        if bind_recv && !is_request_chain(&call.receiver) {
            return;
        }
        // A closure argument needs the method's signature to infer its parameters.
        if call
            .args
            .first()
            .is_some_and(|a| matches!(strip_parens(a), Expr::Closure(_)))
        {
            return;
        }
        self.http = true;
        let recv_name = Ident::new("__taskprof_http_recv", Span::mixed_site());
        let arg_name = Ident::new("__taskprof_http_arg", Span::mixed_site());
        let recv = if bind_recv {
            recv_name.to_token_stream()
        } else {
            call.receiver.to_token_stream()
        };
        let mut original = call.clone();
        if bind_recv {
            *original.receiver = parse_quote!(#recv_name);
        }
        let probe_args = if call.args.is_empty() {
            TokenStream::new()
        } else {
            original.args[0] = parse_quote!(#arg_name);
            quote!(&#arg_name)
        };
        let probe_call = quote_spanned!(span=> #probe(#probe_args));
        let mut tokens = quote!((&#recv).#probe_call.wrap(#original));
        if let Some(arg) = call.args.first() {
            tokens = quote!(match #arg { #arg_name => #tokens });
        }
        if bind_recv {
            let receiver = &call.receiver;
            tokens = quote!(match #receiver { #[allow(unused_mut)] mut #recv_name => #tokens });
        }
        *expr = Expr::Verbatim(tokens);
    }

    /// `join!(a, b)` / `try_join!(a, b)`: each branch future is recorded like an `.await`.
    fn join(&mut self, mac: &mut Macro) {
        let Ok(mut join) = mac.parse_body::<Join>() else {
            return;
        };
        for branch in join.branches.iter_mut() {
            self.branch(branch);
        }
        mac.tokens = join.into_token_stream();
    }

    /// `select! { pat = fut, if cond => handler, else => expr }`.
    fn select(&mut self, mac: &mut Macro) {
        let Ok(mut select) = mac.parse_body::<Select>() else {
            return;
        };
        for arm in &mut select.arms {
            match arm {
                SelectArm::Branch(branch) => {
                    self.branch(&mut branch.fut);
                    if let Some((_, _, cond)) = &mut branch.cond {
                        self.visit_expr_mut(cond);
                    }
                    self.visit_expr_mut(&mut branch.handler);
                }
                SelectArm::Else { expr, .. } => self.visit_expr_mut(expr),
            }
        }
        mac.tokens = select.into_token_stream();
    }

    fn branch(&mut self, fut: &mut Expr) {
        if self.awaits {
            // A branch can be dropped while pending (a losing `select!` branch).
            self.record(fut, None, false);
        } else {
            self.visit_expr_mut(fut);
        }
    }
}

impl VisitMut for Rewriter {
    fn visit_item_mut(&mut self, _: &mut Item) {}

    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Await(node) if self.awaits => {
                // The original `.` and `await` tokens stay, so "not `Send`" notes and the like
                // still point at the user's `.await`.
                let span = node.await_token.span;
                let in_body = self.nested == 0;
                self.record(&mut node.base, Some(span), in_body);
            }
            Expr::Async(_) | Expr::Closure(_) => {
                self.nested += 1;
                visit_mut::visit_expr_mut(self, expr);
                self.nested -= 1;
            }
            Expr::Call(call) => {
                visit_mut::visit_expr_call_mut(self, call);
                self.path_spawn(call);
            }
            Expr::MethodCall(call) => {
                visit_mut::visit_expr_method_call_mut(self, call);
                self.method_spawn(call);
                if self.awaits {
                    self.http_call(expr);
                }
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        let Some(last) = mac.path.segments.last() else {
            return;
        };
        let name = last.ident.to_string();
        // `futures::select!` needs `FusedFuture` branches, which a recorded branch is not.
        let futures = mac
            .path
            .segments
            .iter()
            .any(|s| s.ident == "futures" || s.ident == "futures_util");
        match name.as_str() {
            "join" | "try_join" => self.join(mac),
            "select" if !futures => self.select(mac),
            _ => {}
        }
    }
}

/// Where a recorded await is and what it says.
struct Site {
    span: Span,
    text: String,
}

impl Site {
    /// A method call is located at its method name (`.send()` in a chain); anything else at its
    /// first token.
    fn of(expr: &Expr) -> Self {
        Site {
            span: site_span(expr),
            text: print::site_text(expr.to_token_stream()),
        }
    }

    /// `::taskprof::__private::await_point({ static S: AwaitSite = ..; struct T; impl
    /// AwaitSiteOf for T {..}; T }, expr)`: the site as a zero-sized type, so the await point
    /// carries no pointer to it.
    ///
    /// `expr` stays a direct argument, so its temporaries live exactly as long as before; the
    /// static and the type are in their own block, so every site can use the same names.
    fn await_point(&self, func: &str, expr: Expr, start: Span, end: Span) -> ExprCall {
        ExprCall {
            attrs: Vec::new(),
            func: Box::new({
                let func = Ident::new(func, start);
                parse_quote_spanned!(start=> ::taskprof::__private::#func)
            }),
            paren_token: token::Paren(end),
            args: Punctuated::from_iter([self.site_block(), expr]),
        }
    }

    /// The site as a zero-sized type, in a block of its own.
    fn site_block(&self) -> Expr {
        let location = quote_spanned!(self.span=> ::core::panic::Location::caller());
        let text = LitStr::new(&self.text, Span::call_site());
        let site_type = Ident::new("__TaskprofAwait", Span::mixed_site());
        let site: Expr = parse_quote! {{
            static __TASKPROF_AWAIT: ::taskprof::__private::AwaitSite =
                ::taskprof::__private::AwaitSite::new(&__TASKPROF_FN, #location, #text);
            struct #site_type;
            impl ::taskprof::__private::AwaitSiteOf for #site_type {
                #[inline]
                fn site() -> &'static ::taskprof::__private::AwaitSite {
                    &__TASKPROF_AWAIT
                }
            }
            #site_type
        }};
        site
    }
}

impl Site {
    /// `match expr { e => (&e).__taskprof_await_kind().await_in_body(SITE, e) }`: the tag the
    /// awaited type picks wraps it (see `FrameAwaitKind`). The bare `match` keeps `expr`'s
    /// temporaries to the end of the user's statement, as a direct argument does.
    fn await_frame(&self, expr: Expr, start: Span, end: Span) -> Expr {
        let site = self.site_block();
        let awaited = Ident::new("__taskprof_awaited", Span::mixed_site());
        let method = Ident::new("await_in_body", start);
        let mut call: ExprMethodCall = parse_quote_spanned! {start=>
            (&#awaited).__taskprof_await_kind().#method(#site, #awaited)
        };
        call.paren_token = token::Paren(end);
        let arm: Arm = parse_quote!(#awaited => #call);
        Expr::Match(ExprMatch {
            attrs: Vec::new(),
            match_token: Token![match](Span::call_site()),
            expr: Box::new(expr),
            brace_token: token::Brace(Span::call_site()),
            arms: vec![arm],
        })
    }
}

/// `client.get(url).header(..)`: a method chain ending in a reqwest request-builder method.
fn is_request_chain(expr: &Expr) -> bool {
    const BUILDER: &[&str] = &[
        "get",
        "post",
        "put",
        "patch",
        "delete",
        "head",
        "request",
        "header",
        "headers",
        "query",
        "json",
        "form",
        "body",
        "timeout",
        "basic_auth",
        "bearer_auth",
        "version",
        "multipart",
        "try_clone",
    ];
    match strip_parens(expr) {
        Expr::MethodCall(m) => BUILDER.contains(&m.method.to_string().as_str()),
        _ => false,
    }
}

/// A place expression that can be read twice without side effects: `x`, `self.client`.
fn is_place(expr: &Expr) -> bool {
    match expr {
        Expr::Path(p) => p.qself.is_none(),
        Expr::Field(f) => is_place(&f.base),
        Expr::Paren(p) => is_place(&p.expr),
        Expr::Group(g) => is_place(&g.expr),
        _ => false,
    }
}

fn strip_parens(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(inner) => strip_parens(&inner.expr),
        Expr::Group(inner) => strip_parens(&inner.expr),
        other => other,
    }
}

fn site_span(expr: &Expr) -> Span {
    match expr {
        Expr::MethodCall(call) => call.method.span(),
        Expr::Group(group) => site_span(&group.expr),
        other => first_span(other.to_token_stream()),
    }
}

fn last_span(tokens: TokenStream) -> Span {
    tokens
        .into_iter()
        .last()
        .map_or_else(Span::call_site, |t| t.span())
}

/// `biased;` at the start of `join!` or `select!`.
fn parse_biased(input: ParseStream) -> syn::Result<Option<(Ident, Token![;])>> {
    if input.peek(Ident) && input.peek2(Token![;]) {
        let fork = input.fork();
        if fork.parse::<Ident>()? == "biased" {
            return Ok(Some((input.parse()?, input.parse()?)));
        }
    }
    Ok(None)
}

fn biased_tokens(biased: &Option<(Ident, Token![;])>, tokens: &mut TokenStream) {
    if let Some((ident, semi)) = biased {
        ident.to_tokens(tokens);
        semi.to_tokens(tokens);
    }
}

/// `join!` / `try_join!` arguments: `[biased;] fut, fut, ...`.
struct Join {
    biased: Option<(Ident, Token![;])>,
    branches: Punctuated<Expr, Token![,]>,
}

impl Parse for Join {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        Ok(Join {
            biased: parse_biased(input)?,
            branches: Punctuated::parse_terminated(input)?,
        })
    }
}

impl ToTokens for Join {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        biased_tokens(&self.biased, tokens);
        self.branches.to_tokens(tokens);
    }
}

/// `tokio::select!` input.
struct Select {
    biased: Option<(Ident, Token![;])>,
    arms: Vec<SelectArm>,
}

enum SelectArm {
    /// `pat = fut [, if cond] => handler [,]`
    Branch(Box<SelectBranch>),
    /// `else => expr [,]`
    Else {
        else_token: Token![else],
        arrow: Token![=>],
        expr: Expr,
        comma: Option<Token![,]>,
    },
}

struct SelectBranch {
    pat: Pat,
    eq: Token![=],
    fut: Expr,
    cond: Option<(Token![,], Token![if], Expr)>,
    arrow: Token![=>],
    handler: Expr,
    comma: Option<Token![,]>,
}

impl Parse for Select {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let biased = parse_biased(input)?;
        let mut arms = Vec::new();
        while !input.is_empty() {
            if input.peek(Token![else]) {
                let else_token = input.parse()?;
                let arrow = input.parse()?;
                let (expr, comma) = handler(input)?;
                arms.push(SelectArm::Else {
                    else_token,
                    arrow,
                    expr,
                    comma,
                });
                continue;
            }
            let pat = Pat::parse_multi_with_leading_vert(input)?;
            let eq = input.parse()?;
            let fut = input.parse()?;
            let cond = if input.peek(Token![,]) && input.peek2(Token![if]) {
                Some((input.parse()?, input.parse()?, input.parse()?))
            } else {
                None
            };
            let arrow = input.parse()?;
            let (handler, comma) = handler(input)?;
            arms.push(SelectArm::Branch(Box::new(SelectBranch {
                pat,
                eq,
                fut,
                cond,
                arrow,
                handler,
                comma,
            })));
        }
        Ok(Select { biased, arms })
    }
}

/// A handler is a block (comma optional) or an expression followed by `,` or the end, as in
/// tokio's `$h:block` / `$h:expr,` rules.
fn handler(input: ParseStream) -> syn::Result<(Expr, Option<Token![,]>)> {
    let expr = if input.peek(token::Brace) {
        Expr::Block(syn::ExprBlock {
            attrs: Vec::new(),
            label: None,
            block: input.parse()?,
        })
    } else {
        input.parse()?
    };
    let comma: Option<Token![,]> = input.parse()?;
    if comma.is_none() && !input.is_empty() && !matches!(expr, Expr::Block(_)) {
        return Err(input.error("expected `,`"));
    }
    Ok((expr, comma))
}

impl ToTokens for Select {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        biased_tokens(&self.biased, tokens);
        for arm in &self.arms {
            match arm {
                SelectArm::Branch(b) => {
                    b.pat.to_tokens(tokens);
                    b.eq.to_tokens(tokens);
                    b.fut.to_tokens(tokens);
                    if let Some((comma, if_token, cond)) = &b.cond {
                        comma.to_tokens(tokens);
                        if_token.to_tokens(tokens);
                        cond.to_tokens(tokens);
                    }
                    b.arrow.to_tokens(tokens);
                    b.handler.to_tokens(tokens);
                    b.comma.to_tokens(tokens);
                }
                SelectArm::Else {
                    else_token,
                    arrow,
                    expr,
                    comma,
                } => {
                    else_token.to_tokens(tokens);
                    arrow.to_tokens(tokens);
                    expr.to_tokens(tokens);
                    comma.to_tokens(tokens);
                }
            }
        }
    }
}
