//! (being written)
pub async fn run(_port: u16, _seconds: Option<u64>) -> anyhow::Result<()> {
    anyhow::bail!("demo is being written")
}
