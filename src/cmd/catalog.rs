//! `elicence catalog list|show|check|publish`: inspect and check the catalog of licence types,
//! and publish one as the catalog that decides rights on a registry
//! (see `registry::CatalogVersion`).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::catalog::{self, CatalogSources, FieldKind, LicenceType};
use crate::cmd::args::{CatalogArgs, OperatorArgs, RegistryArgs};
use crate::exit;
use crate::registry::Role;
use crate::render::layout::Layout;

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// List the licence types: id, type code, name, sharing.
    #[command(after_help = "Example:\n  elicence catalog list --dir pipelines/catalog")]
    List {
        /// Catalog folder. Default: ./pipelines/catalog, else /usr/share/elicence/catalog.
        #[arg(long, default_value_os_t = catalog::default_dir())]
        dir: PathBuf,
        /// One JSON object per type.
        #[arg(long)]
        json: bool,
    },
    /// Show one type with all its fields.
    #[command(after_help = "Example:\n  elicence catalog show food-business-permit")]
    Show {
        /// Type id (file name), type code or Chinese name.
        which: String,
        /// Catalog folder. Default: ./pipelines/catalog, else /usr/share/elicence/catalog.
        #[arg(long, default_value_os_t = catalog::default_dir())]
        dir: PathBuf,
    },
    /// Check every catalog file and report every problem at once (file:line: key: problem).
    #[command(after_help = "Example:\n  elicence catalog check --dir pipelines/catalog")]
    Check {
        /// Catalog folder. Default: ./pipelines/catalog, else /usr/share/elicence/catalog.
        #[arg(long, default_value_os_t = catalog::default_dir())]
        dir: PathBuf,
    },
    /// Publish a catalog folder as the one that decides every department's rights (sharing
    /// modes, scopes, protected fields) on the registry; audited `catalog_published`.
    #[command(after_help = "Example:\n  \
        elicence catalog publish --catalog /etc/elicence/catalog --operator 王芳\n\n\
        Needs the admin role once the registry has operators. Publishing the catalog already \
        published changes nothing. `elicence run` stops (exit 3) when its pipeline's catalog \
        is not the published one, unless given --publish.")]
    Publish {
        #[command(flatten)]
        catalog: CatalogArgs,
        #[command(flatten)]
        by: OperatorArgs,
        #[command(flatten)]
        registry: RegistryArgs,
        /// Print the published version as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: &CatalogCommand) -> anyhow::Result<i32> {
    match cmd {
        CatalogCommand::Publish { catalog, by, registry, json } => {
            let at = crate::clock::now()?;
            let sources = CatalogSources::read_dir(&catalog.catalog)?;
            // Every problem of every file, before the registry is opened.
            sources.load(&catalog.catalog)?;
            let mut registry = registry.open()?;
            let actor = by.authorize(&mut registry, "catalog publish", &[Role::Admin])?;
            let (version, published) = registry.publish_catalog(&sources, actor.name(), at)?;
            if *json {
                let v = serde_json::json!({
                    "version": version.number, "sha256": version.sha256,
                    "published": published, "operator": version.operator,
                    "published_at": version.published_at,
                    "files": version.sources.files.keys().collect::<Vec<_>>(),
                });
                println!("{v}");
            } else if published {
                println!(
                    "catalog #{} published (sha256 {}, {} files): it decides rights from now on",
                    version.number,
                    version.sha256,
                    version.sources.files.len()
                );
            } else {
                println!(
                    "catalog #{} (sha256 {}) is already the published one; nothing changed",
                    version.number, version.sha256
                );
            }
            Ok(exit::OK)
        }
        CatalogCommand::List { dir, json } => {
            let cat = catalog::load_dir(dir)?;
            for t in &cat.types {
                if *json {
                    let v = serde_json::json!({
                        "id": t.id, "name": t.name, "code": t.code, "local_code": t.local_code,
                        "sharing": t.sharing, "single_instance": t.single_instance,
                        "fields": t.fields.len(),
                    });
                    println!("{v}");
                } else {
                    let local = if t.local_code { " (local code)" } else { "" };
                    println!("{:<32} {}{}  {}  [{}]", t.id, t.code, local, t.name, t.sharing);
                }
            }
            Ok(exit::OK)
        }
        CatalogCommand::Show { which, dir } => {
            let cat = catalog::load_dir(dir)?;
            match cat.get(which) {
                Some(t) => {
                    print!("{}", describe(t));
                    Ok(exit::OK)
                }
                None => {
                    eprintln!("no licence type {which:?} in {}", dir.display());
                    Ok(exit::CONFIG)
                }
            }
        }
        CatalogCommand::Check { dir } => match catalog::load_dir(dir) {
            Ok(cat) => {
                let problems = check_layouts(dir, &cat);
                for p in &problems {
                    println!("{p}");
                }
                if !problems.is_empty() {
                    eprintln!("{} problem(s) in the layouts", problems.len());
                    return Ok(exit::CONFIG);
                }
                println!("catalog ok: {} licence types in {}", cat.types.len(), dir.display());
                Ok(exit::OK)
            }
            Err(e) => {
                for p in &e.problems {
                    println!("{p}");
                }
                eprintln!("{} problem(s)", e.problems.len());
                Ok(exit::CONFIG)
            }
        },
    }
}

/// Checks the face layout of each type (`<dir>/../layouts/<id>.toml`, when present) against the
/// type's fields: a layout box naming a field the catalog lacks is a problem.
fn check_layouts(dir: &Path, cat: &catalog::Catalog) -> Vec<String> {
    let layouts = dir.parent().unwrap_or(Path::new(".")).join("layouts");
    let mut problems = Vec::new();
    for t in &cat.types {
        let path = layouts.join(format!("{}.toml", t.id));
        if !path.exists() {
            continue;
        }
        match Layout::load(&path) {
            Ok(layout) => {
                let keys: Vec<&str> = t.fields.iter().map(|f| f.key.as_str()).collect();
                if let Err(errors) = layout.check(&keys) {
                    problems.extend(errors.iter().map(|e| e.to_string()));
                }
                if layout.type_name != t.name {
                    problems.push(format!(
                        "{}: type_name {:?} is not the catalog name {:?}",
                        path.display(),
                        layout.type_name,
                        t.name
                    ));
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    problems
}

fn describe(t: &LicenceType) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{} ({})", t.name, t.id);
    let _ = writeln!(
        s,
        "  type code:        {}{}",
        t.code,
        if t.local_code { " (derived locally)" } else { "" }
    );
    let _ = writeln!(
        s,
        "  defined by:       {} {} ({})",
        t.definer.name,
        t.definer.uscc,
        t.definer.level.chinese()
    );
    let _ = writeln!(s, "  issuing level:    {}", t.issuing_level.chinese());
    let _ = writeln!(
        s,
        "  holder:           {:?}, code type {}",
        t.holder_category, t.holder_code_type
    );
    let validity = match (t.validity.max_years, t.validity.open_ended) {
        (Some(y), true) => format!("at most {y} years, or open-ended"),
        (Some(y), false) => format!("at most {y} years"),
        (None, true) => "any, or open-ended".to_string(),
        (None, false) => "any".to_string(),
    };
    let _ = writeln!(s, "  validity:         {validity}");
    let _ = writeln!(s, "  single instance:  {}", t.single_instance);
    let _ = writeln!(s, "  sharing:          {}", t.sharing);
    if let catalog::Sharing::Conditional { scope } = &t.sharing {
        for d in scope {
            let _ = writeln!(s, "                    {d}");
        }
    }
    if let Some((name, code)) = &t.service_item {
        let _ = writeln!(s, "  service item:     {name} ({code})");
    }
    let _ = writeln!(s, "  fields:");
    for f in &t.fields {
        let kind = match &f.kind {
            FieldKind::Enum(v) => format!("enum [{}]", v.join(", ")),
            FieldKind::LicenceNo(re) => format!("licence_no {}", re.as_str()),
            k => k.name().to_string(),
        };
        let mut flags = Vec::new();
        if f.required {
            flags.push("required".to_string());
        }
        if let Some(m) = f.max_len {
            flags.push(format!("max {m}"));
        }
        if f.personal {
            flags.push("personal".into());
        }
        if f.trade_secret {
            flags.push("trade secret".into());
        }
        let _ = writeln!(s, "    {:<22} {:<14} {:<40} {}", f.key, f.label, kind, flags.join(", "));
    }
    s
}
