//! `bench_image OUT_DIR LAYERS MIB`: write an OCI layout `OUT_DIR:latest`
//! holding busybox plus LAYERS layers of MIB MiB of random (incompressible)
//! data each, for `bench/pull.sh`. Also `bench_image OUT_DIR --shared N`:
//! N images `img1..imgN` that share the busybox base and add one small
//! layer each (the disk-use part of the benchmark). `GZIP_LEVEL` (default 1)
//! sets the layers' gzip level.

use berth_testkit::image::{Layer, OciLayout};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, a, b] = args.as_slice() else {
        return Err("usage: bench_image OUT_DIR LAYERS MIB | OUT_DIR --shared N".into());
    };
    let mut layout = OciLayout::create(std::path::Path::new(out))?;
    if let Ok(level) = std::env::var("GZIP_LEVEL") {
        layout.set_gzip_level(level.parse()?);
    }
    let base = Layer::busybox()?;
    if a == "--shared" {
        for i in 1..=b.parse::<usize>()? {
            let top = Layer::new().random_file(&format!("img{i}"), 64 << 10);
            let m = layout.image(&[base.clone(), top], &["/bin/sh"], "linux", "amd64", None)?;
            layout.tag(&format!("img{i}"), &m)?;
        }
        return Ok(());
    }
    let (layers, mib): (usize, usize) = (a.parse()?, b.parse()?);
    let mut all = vec![base];
    for i in 1..=layers {
        all.push(Layer::new().random_file(&format!("blob{i}"), mib << 20));
    }
    let m = layout.image(&all, &["/bin/sh"], "linux", "amd64", None)?;
    layout.tag("latest", &m)?;
    Ok(())
}
