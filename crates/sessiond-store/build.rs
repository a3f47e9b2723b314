// `sqlx::migrate!` embeds the migration files when this crate compiles, but cargo does
// not know it read them: without this, a new migration file alone would not rebuild it.
fn main() {
    println!("cargo:rerun-if-changed=src/sqlite/migrations");
    println!("cargo:rerun-if-changed=src/postgres/migrations");
}
