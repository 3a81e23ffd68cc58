//! The prompt a model is given (the system prompt, the history and the numbered passages that
//! fit its context window) and the citations its answer makes.

use lore_core::agent::{Agent, Citation};
use lore_core::model::ChunkHit;
use lore_llm::{Message, Role};

use super::*;

pub(crate) fn is_chinese(text: &str) -> bool {
    lore_llm::extractive::is_cjk_text(text)
}

pub(crate) fn default_system_prompt(agent: &Agent, question: &str) -> String {
    if is_chinese(question) {
        format!(
            "你是「{}」，根据知识库回答问题的助手。只使用上下文中编号的资料作答，并在所依据的句子后用 [1]、[2] 这样的编号标注出处。\
             资料中没有答案时，直接说明不知道。用提问的语言回答。",
            agent.name
        )
    } else {
        format!(
            "You are {}, an assistant that answers from a knowledge base. Use only the numbered passages in the \
             context, and cite them as [1], [2] after the sentences they support. If the passages do not contain \
             the answer, say you don't know. Answer in the language of the question.",
            agent.name
        )
    }
}

pub(crate) fn passage_text(hit: &ChunkHit) -> &str {
    hit.parent.as_ref().map(|p| p.content.as_str()).unwrap_or(&hit.content)
}

/// The messages for the model: the system prompt, the history that fits (oldest dropped first),
/// and the question with the numbered passages that fit (best first).
pub(crate) fn assemble(
    agent: &Agent, question: &str, passages: &[ChunkHit], history: Vec<Message>, answer_tokens: u32,
) -> Vec<Message> {
    let est = lore_llm::estimate_tokens;
    let window = agent.context_window.unwrap_or(DEFAULT_CONTEXT_WINDOW).max(512) as u64;
    let template = agent.user_prompt_template.clone().unwrap_or_else(|| {
        if is_chinese(question) {
            "资料：\n{context}\n\n问题：{question}".to_string()
        } else {
            "Context:\n{context}\n\nQuestion: {question}".to_string()
        }
    });
    let mut system = agent.system_prompt.clone().unwrap_or_else(|| default_system_prompt(agent, question));
    let mut budget =
        window.saturating_sub(answer_tokens as u64).saturating_sub(est(&system) + est(&template) + est(question) + 16);

    // Passages by score, while they fit; the first is cut to fit rather than dropped.
    let mut context = String::new();
    for (i, hit) in passages.iter().enumerate() {
        let block = format!("[{}] {}\n{}\n\n", i + 1, hit.title.as_deref().unwrap_or(&hit.filename), passage_text(hit));
        let cost = est(&block);
        if cost <= budget {
            budget -= cost;
            context.push_str(&block);
        } else if i == 0 {
            let chars = (budget as usize).saturating_mul(2);
            context.push_str(&block.chars().take(chars).collect::<String>());
            budget = 0;
        } else {
            break;
        }
    }
    let context = context.trim_end().to_string();

    // History, newest kept first, sent oldest first.
    let mut kept = Vec::new();
    for message in history.into_iter().rev() {
        let cost = est(&message.content) + 4;
        if cost > budget {
            break;
        }
        budget -= cost;
        kept.push(message);
    }
    kept.reverse();
    // An assistant turn first would confuse providers that want the user to speak first.
    while kept.first().is_some_and(|m| m.role != Role::User) {
        kept.remove(0);
    }

    let uses = |p: &str| placeholders(&template).contains(&p);
    let history_text =
        kept.iter().map(|m| format!("{}: {}", m.role.as_str(), m.content)).collect::<Vec<_>>().join("\n");
    if !uses("context") && !context.is_empty() {
        system.push_str("\n\n");
        system.push_str(&context);
    }
    let user =
        template.replace("{context}", &context).replace("{history}", &history_text).replace("{question}", question);
    let mut messages = vec![Message::new(Role::System, system)];
    if !uses("history") {
        messages.extend(kept);
    }
    messages.push(Message::new(Role::User, user));
    messages
}

/// The citations an answer makes: the passages it names as [n], or all it was given when it names none.
pub(crate) fn citations_of(text: &str, passages: &[ChunkHit]) -> Vec<Citation> {
    let mut named: Vec<usize> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        if let Some(close) = after.find(']') {
            for part in after[..close].split([',', '，', ' ']) {
                if let Ok(n) = part.trim().parse::<usize>()
                    && (1..=passages.len()).contains(&n)
                    && !named.contains(&n)
                {
                    named.push(n);
                }
            }
        }
        rest = after;
    }
    if named.is_empty() {
        named = (1..=passages.len()).collect();
    }
    named.sort_unstable();
    named
        .into_iter()
        .map(|n| {
            let hit = &passages[n - 1];
            Citation {
                index: n as i64,
                document_id: hit.document_id,
                chunk_id: Some(hit.chunk_id),
                score: Some(hit.score),
                filename: Some(hit.filename.clone()),
                snippet: Some(hit.content.chars().take(SNIPPET_CHARS).collect()),
                location: lore_core::agent::chunk_location(&hit.metadata),
            }
        })
        .collect()
}
