//! `crd-gen`: writes the CRD YAML files and the API reference generated from `api/`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Write the generated CRDs and API reference.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Repository root the generated paths are relative to.
    #[arg(long, default_value = ".")]
    root: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for (path, content) in crd_gen::render()? {
        let path = args.root.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
