//! `aether build [PATH]`: builds a function crate as `aether deploy` would
//! and prints where the `.wasm` file is, without deploying it.

use crate::build;
use crate::cli::BuildArgs;
use crate::output;

/// Runs `aether build`.
pub async fn run(args: BuildArgs, json: bool) -> anyhow::Result<()> {
    let built = build::build_crate(&args.path).await?;
    if json {
        return output::json(&built);
    }
    println!(
        "built {} for {}: {}",
        built.name,
        built.target,
        built.wasm.display()
    );
    Ok(())
}
