#![deny(warnings)]

use std::fmt::Debug;
use std::marker::PhantomData;

pub struct Store<T, const N: usize> {
    items: Vec<T>,
}

impl<T: Clone + Send, const N: usize> Store<T, N> {
    #[taskprof::track]
    pub async fn first<'a>(&'a self, fallback: &'a T) -> &'a T
    where
        T: Debug,
    {
        tokio::task::yield_now().await;
        self.items.first().unwrap_or(fallback)
    }

    #[taskprof::track]
    pub async fn map<U, F>(&self, f: F) -> Vec<U>
    where
        F: Fn(&T) -> U,
    {
        self.items.iter().map(f).collect()
    }
}

#[taskprof::track(name = "generic")]
async fn pick<'a, 'b: 'a, K, V: Default>(
    map: &'a [(K, V)],
    key: &'b K,
    _marker: PhantomData<&'b ()>,
) -> Option<&'a V>
where
    K: PartialEq + 'a,
{
    tokio::task::yield_now().await;
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[taskprof::track]
async fn elided(s: &str) -> &str {
    s.trim()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store: Store<u8, 3> = Store { items: vec![1, 2] };
        assert_eq!(*store.first(&0).await, 1);
        assert_eq!(store.map(|x| u32::from(*x) * 2).await, [2, 4]);
        let map = [(1, "one"), (2, "two")];
        assert_eq!(pick(&map, &2, PhantomData).await, Some(&"two"));
        assert_eq!(elided(" x ").await, "x");
    });
}
