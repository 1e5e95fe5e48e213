//! Rebuilds the store when a migration is added: `embed_migrations!` tracks only the files it
//! read, so a new migration directory would otherwise go unnoticed until another change.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
