//! Statements on `messages` and `inbox`.
//!
//! Sending writes one `inbox` row per recipient, so read state is per recipient and counting a
//! session's unread mail is a lookup in a small partial index, whatever the history size.

use super::sql::{Arg, IntoArg, Row, args};
use super::{ReadTx, StoreError, WriteTx, word};
use crate::clock::Timestamp;
use crate::ids::MessageId;
use crate::model::{Channel, Message, Priority};

fn message_from_row(row: &Row<'_>) -> Result<Message, StoreError> {
    let read_at: Option<i64> = row.get("read_at")?;
    Ok(Message {
        message_id: MessageId(row.get("id")?),
        from_session: row.get("from_session")?,
        from_name: row.get("from_name")?,
        to_session: row.get("to_session")?,
        to_group: row.get("to_group")?,
        channel: word(row, "channel", Channel::parse)?,
        priority: word(row, "priority", Priority::parse)?,
        content: row.get("content")?,
        created_at: Timestamp::from_millis(row.get("created_at")?),
        read: read_at.is_some(),
    })
}

#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub project: &'a str,
    /// `None` for notices from the coordinator itself.
    pub from_session: Option<&'a str>,
    pub from_name: &'a str,
    /// `None` for a broadcast.
    pub to_session: Option<&'a str>,
    /// The group it was sent to, if any.
    pub to_group: Option<&'a str>,
    pub channel: Channel,
    pub priority: Priority,
    pub content: &'a str,
    pub now: Timestamp,
}

/// Which messages of an inbox `message_list` shows.
#[derive(Debug, Clone, Copy)]
pub struct InboxFilter {
    pub channel: Option<Channel>,
    pub unread_only: bool,
    pub since: Option<Timestamp>,
    pub limit: usize,
}

/// What marking one message as read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkRead {
    Marked,
    AlreadyRead,
    NotInInbox,
}

impl ReadTx<'_> {
    /// A session's inbox, newest first.
    pub fn inbox(&self, session_id: &str, filter: InboxFilter) -> Result<Vec<Message>, StoreError> {
        let mut sql = String::from(
            "SELECT m.id, m.from_session, m.from_name, m.to_session, m.to_group, m.channel,
                    m.priority, m.content, m.created_at, x.read_at
             FROM inbox x JOIN messages m ON m.id = x.message_id
             WHERE x.session_id = ?",
        );
        let mut values = vec![session_id.arg()];
        if filter.unread_only {
            sql.push_str(" AND x.read_at IS NULL");
        }
        if let Some(channel) = filter.channel {
            sql.push_str(" AND m.channel = ?");
            values.push(channel.as_str().arg());
        }
        if let Some(since) = filter.since {
            sql.push_str(" AND m.created_at >= ?");
            values.push(Arg::Int(since.as_millis()));
        }
        sql.push_str(" ORDER BY x.message_id DESC LIMIT ?");
        values.push(Arg::Int(i64::try_from(filter.limit).unwrap_or(i64::MAX)));
        self.conn.query(&sql, &values, message_from_row)
    }

    /// A project's messages (every project's without one), newest first, as a person reviewing
    /// the traffic sees them: `read` is true when no recipient still has it unread (also when it
    /// reached no one, or its recipients have ended).
    pub fn project_messages(
        &self,
        project: Option<&str>,
        channel: Option<Channel>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.conn.query(
            "SELECT m.id, m.from_session, m.from_name, m.to_session, m.to_group, m.channel,
                    m.priority, m.content, m.created_at,
                    CASE WHEN EXISTS (SELECT 1 FROM inbox x
                                      WHERE x.message_id = m.id AND x.read_at IS NULL)
                         THEN NULL ELSE m.created_at END AS read_at
             FROM messages m
             WHERE (CAST(?1 AS TEXT) IS NULL OR m.project = ?1) AND (CAST(?2 AS TEXT) IS NULL OR m.channel = ?2)
             ORDER BY m.id DESC LIMIT ?3",
            &args![
                project,
                channel.map(Channel::as_str),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            message_from_row,
        )
    }

    /// How many unread messages a session has, and how many of them are urgent: the counters
    /// the triggers of migration 005 keep, since this runs on every answer. (0, 0) for a
    /// session that does not exist.
    pub fn unread(&self, session_id: &str) -> Result<(i64, i64), StoreError> {
        Ok(self
            .conn
            .query_opt(
                "SELECT unread, unread_urgent FROM sessions WHERE id = ?1",
                &args![session_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?
            .unwrap_or((0, 0)))
    }
}

impl WriteTx<'_> {
    pub fn insert_message(&self, message: &NewMessage<'_>) -> Result<MessageId, StoreError> {
        let id = self.conn.query_one(
            "INSERT INTO messages
                (project, from_session, from_name, to_session, to_group, channel, priority,
                 content, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             RETURNING id",
            &args![
                message.project,
                message.from_session,
                message.from_name,
                message.to_session,
                message.to_group,
                message.channel.as_str(),
                message.priority.as_str(),
                message.content,
                message.now.as_millis()
            ],
            |row| row.get(0),
        )?;
        Ok(MessageId(id))
    }

    /// Puts a message in a session's inbox, unread.
    pub fn deliver(&self, message_id: MessageId, session_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO inbox (session_id, message_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            &args![session_id, message_id.0],
        )?;
        Ok(())
    }

    pub fn mark_read(
        &self,
        session_id: &str,
        message_id: MessageId,
        now: Timestamp,
    ) -> Result<MarkRead, StoreError> {
        let marked: Option<bool> = self.conn.query_opt(
            "UPDATE inbox SET read_at = coalesce(read_at, ?3)
             WHERE session_id = ?1 AND message_id = ?2
             RETURNING read_at = ?3",
            &args![session_id, message_id.0, now.as_millis()],
            |row| row.get(0),
        )?;
        Ok(match marked {
            Some(true) => MarkRead::Marked,
            Some(false) => MarkRead::AlreadyRead,
            None => MarkRead::NotInInbox,
        })
    }

    /// Marks every unread message of a session as read; returns how many were unread.
    pub fn mark_all_read(&self, session_id: &str, now: Timestamp) -> Result<usize, StoreError> {
        self.conn.execute(
            "UPDATE inbox SET read_at = ?2 WHERE session_id = ?1 AND read_at IS NULL",
            &args![session_id, now.as_millis()],
        )
    }
}
