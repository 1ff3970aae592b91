//! The names of `model::ids` as SQL values on both backends: stored and read
//! as text, so a row reads straight into a `MessageId`, `RouteName` or
//! `SystemName`.

use bytes::BytesMut;
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use tokio_postgres::types::{self as pg, IsNull, Type};

use crate::model::{MessageId, RouteName, SystemName};

macro_rules! as_text {
    ($name:ident) => {
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<$name> {
                <String as FromSql>::column_result(value).map($name::from)
            }
        }

        impl pg::ToSql for $name {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut BytesMut,
            ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
                pg::ToSql::to_sql(&self.as_str(), ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <&str as pg::ToSql>::accepts(ty)
            }

            pg::to_sql_checked!();
        }

        impl<'a> pg::FromSql<'a> for $name {
            fn from_sql(
                ty: &Type,
                raw: &'a [u8],
            ) -> Result<$name, Box<dyn std::error::Error + Sync + Send>> {
                <String as pg::FromSql>::from_sql(ty, raw).map($name::from)
            }

            fn accepts(ty: &Type) -> bool {
                <String as pg::FromSql>::accepts(ty)
            }
        }
    };
}

as_text!(MessageId);
as_text!(RouteName);
as_text!(SystemName);
