//! Rewrites the committed JSON Schema files from the serde types.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(schemas::json_schema::DIR);
    std::fs::create_dir_all(&dir)?;
    for (name, text) in schemas::json_schema::all() {
        std::fs::write(dir.join(name), text)?;
        println!("wrote {}", dir.join(name).display());
    }
    Ok(())
}
