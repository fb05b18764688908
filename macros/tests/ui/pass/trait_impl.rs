#![deny(warnings)]

trait Store {
    fn load(&self, id: u64) -> impl std::future::Future<Output = Option<String>> + Send;
    async fn describe(&self) -> String;

    #[taskprof::track]
    async fn default_method(&self) -> usize {
        self.describe().await.len()
    }
}

pub struct Memory<T>(Vec<T>);

impl<T: ToString + Sync> Store for Memory<T> {
    #[taskprof::track]
    async fn load(&self, id: u64) -> Option<String> {
        tokio::task::yield_now().await;
        self.0
            .get(usize::try_from(id).ok()?)
            .map(ToString::to_string)
    }

    #[taskprof::track(name = "Memory::describe")]
    async fn describe(&self) -> String {
        format!("{} items", self.0.len())
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let m = Memory(vec![10, 20]);
        assert_eq!(m.load(1).await.as_deref(), Some("20"));
        assert_eq!(m.describe().await, "2 items");
        assert_eq!(m.default_method().await, 7);
    });
}
