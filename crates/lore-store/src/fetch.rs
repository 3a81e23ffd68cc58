//! `query.run(&pool)`, `.all`, `.one`, `.optional`: sqlx's execute and fetches with the database
//! error already mapped by [`db_err`], so that a statement and its binds read on one line.

use crate::rows::db_err;
use lore_core::error::Result;
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{Database, Executor, FromRow, IntoArguments};

pub(crate) trait Fetch<DB: Database>: Sized {
    /// What one row reads as: the row itself, a column, or a type built from the row.
    type Item;

    /// Runs a statement; the result tells how many rows it touched.
    async fn run<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<DB::QueryResult>;
    async fn all<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Vec<Self::Item>>;
    async fn one<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Self::Item>;
    async fn optional<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Option<Self::Item>>;
}

impl<'q, DB: Database, A: 'q + IntoArguments<DB> + Send> Fetch<DB> for Query<'q, DB, A> {
    type Item = DB::Row;

    async fn run<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<DB::QueryResult> {
        self.execute(on).await.map_err(db_err)
    }
    async fn all<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Vec<DB::Row>> {
        self.fetch_all(on).await.map_err(db_err)
    }
    async fn one<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<DB::Row> {
        self.fetch_one(on).await.map_err(db_err)
    }
    async fn optional<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Option<DB::Row>> {
        self.fetch_optional(on).await.map_err(db_err)
    }
}

/// Query types whose rows read as `O`: a column (`query_scalar`) or a type built from the row
/// (`query_as`).
macro_rules! fetch_as {
    ($query:ident, $($bound:tt)+) => {
        impl<'q, DB, O, A> Fetch<DB> for $query<'q, DB, O, A>
        where
            DB: Database,
            O: Send + Unpin,
            $($bound)+,
            A: 'q + IntoArguments<DB> + Send,
        {
            type Item = O;

            async fn run<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<DB::QueryResult> {
                on.execute(self).await.map_err(db_err)
            }
            async fn all<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Vec<O>> {
                self.fetch_all(on).await.map_err(db_err)
            }
            async fn one<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<O> {
                self.fetch_one(on).await.map_err(db_err)
            }
            async fn optional<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Option<O>> {
                self.fetch_optional(on).await.map_err(db_err)
            }
        }
    };
}

fetch_as!(QueryScalar, (O,): for<'r> FromRow<'r, DB::Row>);
fetch_as!(QueryAs, O: for<'r> FromRow<'r, DB::Row>);
