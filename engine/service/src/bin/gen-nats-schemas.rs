//! Rewrites the committed JSON Schemas of the NATS replies, rejects and notifications
//! (`schemas/json/v1`) from the Rust types
//! (`cargo run -p engine-service --bin gen-nats-schemas`).

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(engine_service::nats::json_schema::DIR);
    std::fs::create_dir_all(&dir)?;
    for (name, text) in engine_service::nats::json_schema::all() {
        std::fs::write(dir.join(name), text)?;
        println!("wrote {}", dir.join(name).display());
    }
    Ok(())
}
