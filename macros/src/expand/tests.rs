//! Expander tests on `proc_macro2` tokens. Output is compared with whitespace removed.

use proc_macro2::TokenStream;
use quote::quote;

fn expand(args: TokenStream, item: TokenStream) -> String {
    squash(&super::track(args, item).to_string())
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(&squash(needle)).count()
}

const AWAIT_POINT: &str = "::taskprof::__private::await_point(";
const IN_BODY: &str = "::taskprof::__private::await_in_body(";
/// An `.await` on a call directly in the body: dispatched on the awaited type.
const IN_BODY_CALL: &str = ".__taskprof_await_kind().await_in_body(";
const SPAWNED: &str = "::taskprof::__private::spawned(";
const SPAWNED_BLOCKING: &str = "::taskprof::__private::spawned_blocking(";

#[test]
fn async_fn_becomes_a_frame() {
    let out = expand(
        quote!(name = "custom", label(kind = "db", "a.b" = "c")),
        quote! {
            #[inline]
            pub async fn load(&self, id: u64) -> Result<Row, E> {
                #![allow(unused)]
                let row = self.client.get(&url).send().await?;
                Ok(row)
            }
        },
    );
    let expected_head = squash(
        "#[inline] #[allow(clippy::implied_bounds_in_impls)] pub fn load(&self, id: u64) -> impl ::core::future::Future<Output = \
         Result<Row, E>> + ::taskprof::__private::InFrame { #![allow(unused)] \
         #[allow(unused_imports)] use ::taskprof::__private::{HttpProbe as _, \
         HttpExecProbe as _, NoHttpProbe as _, PassthroughKind as _}; \
         static __TASKPROF_FN: ::taskprof::__private::FnSite = \
         ::taskprof::__private::FnSite::new(\"load\", ::core::module_path!(), \
         ::core::panic::Location::caller(), ::core::option::Option::Some(\"custom\"), \
         &[(\"kind\", \"db\"), (\"a.b\", \"c\")],);",
    );
    assert!(out.starts_with(&expected_head), "{out}");
    // The request chain is evaluated once and probed before it is sent.
    assert_eq!(
        count(
            &out,
            "match self.client.get(&url) { #[allow(unused_mut)] mut __taskprof_http_recv => \
             (&__taskprof_http_recv).__taskprof_http_probe().wrap(__taskprof_http_recv.send()) }"
        ),
        1,
        "{out}"
    );
    assert_eq!(
        count(&out, "let __taskprof_r: Result<Row, E> = loop {};"),
        1
    );
    assert_eq!(
        count(
            &out,
            "AwaitSite::new(&__TASKPROF_FN, ::core::panic::Location::caller(), \
             \"self.client.get(&url).send()\"); struct __TaskprofAwait; impl ::taskprof::__private::AwaitSiteOf for __TaskprofAwait { \
             #[inline] fn site() -> &'static ::taskprof::__private::AwaitSite { &__TASKPROF_AWAIT } } \
             __TaskprofAwait }, match self.client.get(&url)"
        ),
        1,
        "{out}"
    );
    assert_eq!(
        count(
            &out,
            "struct __TaskprofFn; impl ::taskprof::__private::FnSiteOf for __TaskprofFn { \
             #[inline] fn site() -> &'static ::taskprof::__private::FnSite { &__TASKPROF_FN } } \
             ::taskprof::__private::FnSite::label(&__TASKPROF_FN, \
             ::core::any::type_name::<Self> as fn() -> &'static str,);"
        ),
        1,
        "{out}"
    );
    // One state machine: the fn returns the frame around the body's `async` block.
    assert!(out.ends_with(&squash(
        "::taskprof::__private::Framed::labelled(__TaskprofFn, __taskprof_fut) }"
    )));
    // The user's statements sit in fresh braces after the fake return.
    assert_eq!(count(&out, "return __taskprof_r; } { let row ="), 1);
}

#[test]
fn frames_say_in_frame_unless_they_may_be_a_trait_method() {
    const IN_FRAME: &str = "+ ::taskprof::__private::InFrame {";
    const REFINES: &str = "#[allow(refining_impl_trait,";
    // (item, says `InFrame`, allows refining a trait's signature)
    let cases = [
        // A free fn, or an associated fn in a trait impl.
        (
            quote!(
                async fn f() {}
            ),
            true,
            true,
        ),
        (
            quote!(
                pub async fn f() {}
            ),
            true,
            false,
        ),
        (
            quote!(
                pub(crate) async fn m(&self) {}
            ),
            true,
            false,
        ),
        // Maybe a trait's provided method: every impl would have to meet the bound.
        (
            quote!(
                async fn m(&self) {}
            ),
            false,
            false,
        ),
        (
            quote!(
                async fn new() -> Self {
                    Self
                }
            ),
            false,
            false,
        ),
        (
            quote!(
                async fn of(x: Vec<Self>) {}
            ),
            false,
            false,
        ),
        // Stays an `async fn` (another attribute follows): no frame type in the signature.
        (
            quote!(
                #[instrument]
                pub async fn f() {}
            ),
            false,
            false,
        ),
    ];
    for (item, in_frame, refines) in cases {
        let out = expand(quote!(), item);
        assert_eq!(count(&out, IN_FRAME), usize::from(in_frame), "{out}");
        assert_eq!(count(&out, REFINES), usize::from(refines), "{out}");
    }
}

#[test]
fn only_awaited_calls_dispatch_on_the_type() {
    let out = expand(
        quote!(),
        quote! {
            async fn f() {
                a.await;
                b().await;
                (x.c()).await;
                make!().await;
            }
        },
    );
    assert_eq!(count(&out, IN_BODY), 2, "{out}");
    assert_eq!(count(&out, IN_BODY_CALL), 2, "{out}");
    assert_eq!(
        count(
            &out,
            "match b() { __taskprof_awaited => (&__taskprof_awaited).__taskprof_await_kind()"
        ),
        1,
        "{out}"
    );
    assert_eq!(count(&out, "{FrameAwaitKind as _, AnyAwaitKind as _,"), 1);
}

#[test]
fn free_fn_has_no_type_name_and_empty_labels() {
    let out = expand(
        quote!(),
        quote!(
            async fn r#type() {}
        ),
    );
    assert_eq!(
        count(
            &out,
            "FnSite::new(\"type\", ::core::module_path!(), ::core::panic::Location::caller(), \
             ::core::option::Option::None, &[],);"
        ),
        1,
        "{out}"
    );
    assert_eq!(count(&out, "let __taskprof_r: () = loop {};"), 1);
    // A free function's label is computed lazily, from the static: no call per frame.
    assert_eq!(count(&out, "FnSite::label("), 0, "{out}");
    assert_eq!(count(&out, "Framed::new(__TaskprofFn, __taskprof_fut)"), 1);
}

#[test]
fn fake_return_erases_impl_trait_and_skips_never() {
    let out = expand(
        quote!(),
        quote!(
            async fn f(x: impl Display) -> Box<impl Display + Send> {
                Box::new(1)
            }
        ),
    );
    assert_eq!(
        count(&out, "let __taskprof_r: Box<_> = loop {};"),
        1,
        "{out}"
    );
    assert_eq!(
        count(
            &out,
            "fn f(x: impl Display) -> impl ::core::future::Future<Output = \
             Box<impl Display + Send>>"
        ),
        1
    );

    let out = expand(
        quote!(),
        quote!(
            async fn f() -> ! {
                loop {}
            }
        ),
    );
    assert_eq!(count(&out, "__taskprof_r"), 0, "{out}");
}

#[test]
fn arguments_move_into_the_future_in_order() {
    let out = expand(
        quote!(),
        quote!(
            async fn f(self, mut a: u8, (b, c): (u8, u8), #[allow(unused)] _: Guard) {}
        ),
    );
    assert_eq!(
        count(
            &out,
            "fn f(self, a: u8, __taskprof_arg2: (u8, u8), #[allow(unused)] __taskprof_arg3: Guard) \
             -> impl ::core::future::Future<Output = ()>"
        ),
        1,
        "{out}"
    );
    assert_eq!(
        count(
            &out,
            "async move { let _ = &self; #[allow(clippy::redundant_locals)] let mut a = a; \
             let __taskprof_arg2 = __taskprof_arg2; let (b, c) = __taskprof_arg2; \
             let __taskprof_arg3 = __taskprof_arg3; #[allow(unused)] let _ = __taskprof_arg3;"
        ),
        1,
        "{out}"
    );
}

#[test]
fn stays_async_under_other_attribute_macros_and_unsafe() {
    // The keyword as a token: this file holds no unsafe code, not even in a string.
    let unsafety = syn::Token![unsafe](proc_macro2::Span::call_site());
    for item in [
        quote!(
            #[tokio::main]
            async fn main() {}
        ),
        quote!(
            #[instrument]
            async fn f(&self) {}
        ),
        quote!(
            async #unsafety fn f() {}
        ),
    ] {
        let out = expand(quote!(), item);
        assert!(
            out.contains("asyncfn") || out.contains("asyncunsafefn"),
            "{out}"
        );
        assert!(out.ends_with("__taskprof_fut).await}"), "{out}");
    }
    let out = expand(
        quote!(),
        quote!(
            #[doc = "x"]
            #[inline]
            #[must_use]
            #[allow(clippy::x)]
            async fn f() {}
        ),
    );
    assert_eq!(count(&out, "async fn"), 0, "{out}");
}

#[test]
fn awaits_in_nested_async_code_but_not_in_nested_items() {
    let out = expand(
        quote!(),
        quote! {
            async fn f() {
                a.await;
                let c = async { b().await };
                let d = |x| async move { x.e().await };
                let g = async |y| y.await;
                fn inner() -> impl Future { async { h.await } }
                impl S { async fn m(&self) { i.await } }
            }
        },
    );
    // Only `a.await` is directly in the body; the others can be dropped while pending.
    assert_eq!(count(&out, IN_BODY), 1, "{out}");
    assert_eq!(count(&out, AWAIT_POINT), 3, "{out}");
    for text in ["\"a\"", "\"b()\"", "\"x.e()\"", "\"y\""] {
        assert_eq!(count(&out, text), 1, "{text} in {out}");
    }
    assert_eq!(count(&out, "async { h.await }"), 1);
    assert_eq!(count(&out, "async fn m(&self) { i.await }"), 1);
}

#[test]
fn nested_awaits_keep_their_own_text() {
    let out = expand(
        quote!(),
        quote!(
            async fn f() {
                outer(inner().await).await;
            }
        ),
    );
    assert_eq!(count(&out, IN_BODY_CALL), 2);
    assert_eq!(count(&out, "\"outer(inner().await)\""), 1, "{out}");
    assert_eq!(count(&out, "\"inner()\""), 1);
}

#[test]
fn long_await_text_is_cut() {
    let out = expand(
        quote!(),
        quote!(
            async fn f() {
                client
                    .get("https://example.com/a/very/long/path/that/goes/on")
                    .send()
                    .await;
            }
        ),
    );
    assert_eq!(
        count(
            &out,
            "\"client.get(\\\"https://example.com/a/very/long/path/that/goes/…\""
        ),
        1,
        "{out}"
    );
}

#[test]
fn sync_fn_only_rewrites_spawns() {
    let input = quote! {
        fn main() {
            let rt = Runtime::new().unwrap();
            rt.block_on(async { tokio::spawn(work()).await.unwrap() });
        }
    };
    let out = expand(quote!(), input);
    assert_eq!(count(&out, "__TASKPROF_FN"), 0, "{out}");
    assert_eq!(count(&out, AWAIT_POINT), 0);
    assert_eq!(
        count(
            &out,
            "tokio::spawn(::taskprof::__private::spawned(work())).await"
        ),
        1
    );
}

#[test]
fn unchanged_sync_fn_is_emitted_as_written() {
    let item = quote!(
        fn f(x: u8) -> u8 {
            #![allow(unused)]
            let y = x.spawn();
            y
        }
    );
    assert_eq!(expand(quote!(), item.clone()), squash(&item.to_string()));
}

#[test]
fn path_spawns() {
    let out = expand(
        quote!(),
        quote! {
            fn f() {
                tokio::spawn(a);
                ::tokio::spawn(b);
                tokio::task::spawn(c);
                tokio::task::spawn_local(d);
                tokio::task::spawn_blocking(e);
                JoinSet::spawn(&mut set, g);
                tokio::task::JoinSet::<u8>::spawn_local(&mut set, h);
                JoinSet::spawn_blocking(&mut set, i);
                // Not rewritten:
                std::thread::spawn(j);
                spawn(k);
                tokio::spawn(l, m);
                JoinSet::spawn(n);
                taskprof::spawn(o);
                tokio::time::sleep(p);
            }
        },
    );
    for arg in ["a", "b", "c", "d", "g", "h"] {
        assert_eq!(
            count(&out, &format!("{SPAWNED}{arg})")),
            1,
            "{arg} in {out}"
        );
    }
    for arg in ["e", "i"] {
        assert_eq!(
            count(&out, &format!("{SPAWNED_BLOCKING}{arg})")),
            1,
            "{arg} in {out}"
        );
    }
    assert_eq!(count(&out, "::taskprof::__private::spawned"), 8);
    assert_eq!(count(&out, "use ::taskprof"), 0);
}

#[test]
fn method_spawns() {
    let out = expand(
        quote!(),
        quote! {
            fn f() {
                set.spawn(a);
                handle.spawn_local(b);
                rt.handle().spawn_blocking(c);
                // Not rewritten:
                cmd.spawn();
                pool.spawn(d, e);
                x.spawner(f);
            }
        },
    );
    let wrap = |arg: &str, kind: &str| {
        format!(
            "(match {arg} {{ __taskprof_arg => (&__taskprof_arg).{kind}().wrap(__taskprof_arg) }})"
        )
    };
    assert_eq!(
        count(
            &out,
            &format!("set.spawn{}", wrap("a", "__taskprof_spawn_kind"))
        ),
        1
    );
    assert_eq!(
        count(
            &out,
            &format!("handle.spawn_local{}", wrap("b", "__taskprof_spawn_kind"))
        ),
        1
    );
    assert_eq!(
        count(
            &out,
            &format!(
                "rt.handle().spawn_blocking{}",
                wrap("c", "__taskprof_spawn_blocking_kind")
            )
        ),
        1,
        "{out}"
    );
    assert_eq!(count(&out, "match"), 3);
    assert!(out.starts_with(&squash(
        "fn f() { #[allow(unused_imports)] use ::taskprof::__private::{FutureKind as _, \
         BlockingKind as _, PassthroughKind as _};"
    )));
}

#[test]
fn closure_arguments_of_method_spawns() {
    let out = expand(
        quote!(),
        quote! {
            fn f() {
                scope.spawn(|s| s.spawn(|_| ()));
                builder.spawn(move || 1);
                pool.spawn_local((|| 2));
                pool.spawn_blocking(|x| x);
                handle.spawn_blocking(move || 3);
            }
        },
    );
    // Only the argument-less `spawn_blocking` closure is wrapped; the rest stay as written.
    assert_eq!(count(&out, "match"), 1, "{out}");
    assert_eq!(count(&out, "spawn_blocking(match move || 3 {"), 1, "{out}");
    assert_eq!(count(&out, "scope.spawn(|s| s.spawn(|_| ()));"), 1);
    assert_eq!(count(&out, "builder.spawn(move || 1);"), 1);
    assert_eq!(count(&out, "pool.spawn_local((|| 2));"), 1);
    assert_eq!(count(&out, "pool.spawn_blocking(|x| x);"), 1);
}

#[test]
fn only_needed_kinds_are_imported() {
    let out = expand(
        quote!(),
        quote!(
            fn f() {
                set.spawn(a);
            }
        ),
    );
    assert_eq!(
        count(
            &out,
            "use ::taskprof::__private::{FutureKind as _, PassthroughKind as _};"
        ),
        1,
        "{out}"
    );
    let out = expand(
        quote!(),
        quote!(
            async fn f() {
                h.spawn_blocking(a);
            }
        ),
    );
    assert_eq!(
        count(
            &out,
            "use ::taskprof::__private::{BlockingKind as _, PassthroughKind as _};"
        ),
        1,
        "{out}"
    );
}

#[test]
fn nested_spawns_are_rewritten() {
    let out = expand(
        quote!(),
        quote!(
            fn f() {
                tokio::spawn(async {
                    tokio::spawn(async {
                        set.spawn(x);
                    });
                });
            }
        ),
    );
    assert_eq!(count(&out, SPAWNED), 2, "{out}");
    assert_eq!(count(&out, "__taskprof_spawn_kind"), 1);
}

#[test]
fn join_branches_are_recorded() {
    let out = expand(
        quote!(),
        quote! {
            async fn f() {
                let (a, b) = tokio::join!(one(), self.two(x.await));
                futures::try_join!(biased; three(),);
                join!();
            }
        },
    );
    // Two join branches and one try_join branch; the await inside a branch expression runs in
    // the body, before the join starts.
    assert_eq!(count(&out, AWAIT_POINT), 3, "{out}");
    assert_eq!(count(&out, IN_BODY), 1, "{out}");
    assert_eq!(count(&out, "\"self.two(x.await)\""), 1);
    assert_eq!(
        count(&out, "futures::try_join!(biased; ::taskprof"),
        1,
        "{out}"
    );
    assert_eq!(
        count(&out, "&__TASKPROF_AWAIT } } __TaskprofAwait }, three()),)"),
        1,
        "{out}"
    );
    assert_eq!(count(&out, "join!()"), 1);
}

#[test]
fn select_branches_are_recorded() {
    let out = expand(
        quote!(),
        quote! {
            async fn f() {
                tokio::select! {
                    biased;
                    Some(v) = rx.recv(), if !done => { handle(v).await }
                    _ = sleep(d) => tokio::spawn(x),
                    Ok(_) | Err(_) = &mut fut => {},
                    else => other().await,
                }
            }
        },
    );
    // Three branches; the handlers' awaits run in the body, after the select.
    assert_eq!(count(&out, AWAIT_POINT), 3, "{out}");
    assert_eq!(count(&out, IN_BODY_CALL), 2, "{out}");
    for text in [
        "\"rx.recv()\"",
        "\"handle(v)\"",
        "\"sleep(d)\"",
        "\"&mut fut\"",
        "\"other()\"",
    ] {
        assert_eq!(count(&out, text), 1, "{text} in {out}");
    }
    assert_eq!(
        count(&out, "tokio::select!{biased;Some(v)=::taskprof"),
        1,
        "{out}"
    );
    assert_eq!(count(&out, ", if !done =>"), 1);
    assert_eq!(count(&out, SPAWNED), 1);
}

#[test]
fn unparsable_or_foreign_macros_are_left_alone() {
    let cases = [
        quote!(tokio::select! { v = a => b c }),
        quote!(tokio::join!(a b)),
        quote!(futures::select! { v = a.fuse() => {} }),
        quote!(println!("{}", a.await)),
    ];
    for mac in cases {
        let out = expand(quote!(), quote!(async fn f() { #mac; }));
        assert_eq!(count(&out, AWAIT_POINT) + count(&out, IN_BODY), 0, "{out}");
        assert_eq!(count(&out, &format!("{{ {mac}; }}")), 1, "{out}");
    }
}

#[test]
fn sync_fn_select_still_rewrites_spawns() {
    let out = expand(
        quote!(),
        quote!(
            fn f() {
                rt.block_on(async {
                    tokio::select! { _ = a => tokio::spawn(b) }
                })
            }
        ),
    );
    assert_eq!(count(&out, AWAIT_POINT), 0, "{out}");
    assert_eq!(count(&out, SPAWNED), 1, "{out}");
}

#[test]
fn errors_keep_the_item() {
    let item = quote!(
        struct S;
    );
    let out = expand(quote!(), item);
    assert!(out.starts_with("structS;"), "{out}");
    assert_eq!(
        count(
            &out,
            "compile_error!{\"`#[taskprof::track]` can only be applied to functions\"}"
        ),
        1
    );

    let out = expand(
        quote!(bogus),
        quote!(
            const fn f() {}
        ),
    );
    assert!(out.starts_with("constfnf(){}"), "{out}");
    assert_eq!(count(&out, "unknown argument `bogus`"), 1);
    assert_eq!(count(&out, "cannot be applied to a `const fn`"), 1);

    let out = expand(
        quote!(),
        quote!(
            fn f(&self);
        ),
    );
    assert_eq!(count(&out, "needs a function body"), 1, "{out}");
}
