//! 4. SQL over the catalog: the session (built in one place), scripts whose statements run in
//! order, and parameters bound as values.

pub mod dates;
pub mod decimal;
pub mod key_join;
pub mod params;
mod rewrite;
pub mod script;
pub mod session;
pub mod write_order;
pub mod zorder;
