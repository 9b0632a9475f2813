//! Rewrites `schemas/openapi/bianmin.openapi.json` from the code
//! (`cargo run -p engine-service --bin gen-openapi`).

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join(engine_service::openapi::DOCUMENT_PATH);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, engine_service::openapi::document_text())?;
    println!("wrote {}", path.display());
    Ok(())
}
