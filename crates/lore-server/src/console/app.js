// The Lore console: plain JavaScript over the /v1 API, no framework and no build step.
// Every piece of user or document text reaches the page as a text node (textContent), never as
// HTML, and the server's Content-Security-Policy allows no inline script, so an uploaded file
// cannot run script here. The session lives in an HttpOnly cookie; requests that change data
// carry its CSRF token in X-CSRF-Token.
'use strict';

// ---------------------------------------------------------------------------------- strings

// Every string of the console, in the languages of LANGS: [English, Chinese]. t() shows the one in
// the console's language (English where the language has none), with {0}, {1} … filled in.
const LANGS = ['en', 'zh'];
const STRINGS = {
  switch_lang: ['中文', 'English'],
  switch_lang_label: ['Switch the console to Chinese', '切换到英文界面'],
  skip: ['Skip to content', '跳到正文'],
  loading: ['Loading…', '加载中…'],
  save: ['Save', '保存'],
  saved: ['Saved', '已保存'],
  create: ['Create', '创建'],
  delete: ['Delete', '删除'],
  restore: ['Restore', '恢复'],
  none: ['None', '无'],
  confirm_delete: ['Delete “{0}”?', '删除“{0}”？'],
  error_prefix: ['Error', '错误'],
  optional: ['optional', '可选'],
  any: ['Any', '任意'],
  nav_kbs: ['Knowledge bases', '知识库'],
  nav_search: ['Search', '搜索'],
  nav_agents: ['Agents', '智能体'],
  nav_keys: ['API keys', 'API 密钥'],
  nav_usage: ['Usage', '用量'],
  nav_sources: ['Data sources', '数据源'],
  nav_notifications: ['Notifications', '通知'],
  nav_settings: ['Settings', '设置'],
  nav_audit: ['Audit log', '审计日志'],
  nav_team: ['Team', '团队'],
  workspace_label: ['Workspace', '工作空间'],
  workspace_personal: ['{0} (personal)', '{0}（个人）'],
  team_title: ['Team workspaces', '团队工作空间'],
  team_hint: ['A team shares its knowledge bases, agents, data sources, keys and settings. Viewers search and read; editors also change knowledge; admins also manage members, keys and settings.', '团队共享知识库、智能体、数据源、密钥和设置。查看者可以搜索和阅读；编辑者还可以修改知识；管理员还可以管理成员、密钥和设置。'],
  team_create: ['New team workspace', '新建团队工作空间'],
  team_created: ['Team “{0}” created', '已创建团队“{0}”'],
  team_members: ['Members of “{0}”', '“{0}”的成员'],
  team_personal_note: ['Your personal workspace has no other members. Create a team, or switch to one above.', '个人工作空间没有其他成员。请新建团队，或在上方切换到团队。'],
  team_add: ['Add member', '添加成员'],
  team_username: ['Username or email', '用户名或邮箱'],
  team_role: ['Role', '角色'],
  team_added: ['{0} added', '已添加 {0}'],
  team_remove: ['Remove', '移除'],
  team_removed: ['{0} removed', '已移除 {0}'],
  team_leave: ['Leave this workspace', '退出该工作空间'],
  team_role_saved: ['Role of {0} changed', '已更改 {0} 的角色'],
  role_owner: ['Owner', '所有者'],
  role_admin: ['Admin', '管理员'],
  role_editor: ['Editor', '编辑者'],
  role_viewer: ['Viewer', '查看者'],
  team_invite: ['Invite by link', '通过链接邀请'],
  team_invite_hint: ['For whoever holds the link, or only the person with this username or email. It is shown once and admits one person.', '持有链接的任何人可用，或仅限指定用户名或邮箱的人。链接只显示一次，只能邀请一人。'],
  team_invitee: ['Username or email (optional)', '用户名或邮箱（可选）'],
  team_invite_create: ['Create link', '生成链接'],
  team_invite_link: ['Send this link (shown once):', '发送此链接（只显示一次）：'],
  team_invitations: ['Invitations', '邀请'],
  team_invitation_used: ['used', '已使用'],
  team_revoke: ['Revoke', '撤销'],
  join_title: ['Join a team', '加入团队'],
  join_hint: ['You were invited to a team workspace. Join it to work with its knowledge.', '你受邀加入一个团队工作空间。加入后即可使用其中的知识。'],
  join_button: ['Join', '加入'],
  join_done: ['You joined “{0}”', '你已加入“{0}”'],
  kb_sharing: ['Sharing', '共享'],
  kb_sharing_hint: ['Share this knowledge base read-only into another workspace you are in: its members list, read and search it there, and change nothing.', '将该知识库以只读方式共享到你所在的另一个工作空间：那里的成员可以查看和搜索，但不能修改。'],
  kb_share: ['Share', '共享'],
  kb_unshare: ['Stop sharing', '取消共享'],
  kb_shared: ['Shared', '已共享'],
  kb_shared_badge: ['shared with you', '共享给你'],
  kb_shared_note: ['Shared read-only from another workspace: search it here; its owners manage it.', '由另一个工作空间以只读方式共享：可以在这里搜索，由其所有者管理。'],
  audit_title: ['Audit log', '审计日志'],
  audit_hint: ['Security-relevant changes to your account and data: sign-ins, keys, settings, deletions. Entries cannot be changed.', '与你的账户和数据有关的安全变更：登录、密钥、设置、删除。条目不可更改。'],
  audit_everyone: ['Everyone (administrators)', '所有人（管理员）'],
  audit_user: ['User id', '用户 ID'],
  audit_action: ['Action', '操作'],
  audit_all: ['all', '全部'],
  audit_since: ['Since', '起始日期'],
  audit_when: ['When', '时间'],
  audit_actor: ['Who', '操作者'],
  audit_target: ['Target', '对象'],
  audit_address: ['Address', '地址'],
  audit_request: ['Request', '请求'],
  audit_details: ['Details', '详情'],
  audit_empty: ['No entries.', '没有条目。'],
  audit_older: ['Older entries', '更早的条目'],
  audit_filter: ['Filter', '筛选'],
  nav_admin: ['Administration', '管理'],
  admin_title: ['Administration', '管理'],
  admin_server: ['This server', '本服务器'],
  admin_ready: ['ready', '就绪'],
  admin_not_ready: ['not ready', '未就绪'],
  admin_version: ['Version', '版本'],
  admin_node: ['Node', '节点'],
  admin_database: ['Database', '数据库'],
  admin_blobs: ['Uploads', '上传文件'],
  admin_queue: ['Queued jobs', '排队任务'],
  admin_free: ['Free disk', '剩余磁盘'],
  admin_limits: ['Limits', '限制'],
  admin_nodes: ['Nodes', '节点'],
  admin_users: ['Users', '用户'],
  admin_email: ['Email', '邮箱'],
  admin_role: ['Role', '角色'],
  admin_admin: ['administrator', '管理员'],
  admin_member: ['member', '成员'],
  admin_deactivate: ['Deactivate', '停用'],
  admin_reactivate: ['Reactivate', '恢复'],
  admin_inactive: ['inactive', '已停用'],
  admin_invitations: ['Invitations', '邀请'],
  admin_invite: ['Invite', '邀请'],
  admin_invite_email: ['Email (optional)', '邮箱（可选）'],
  admin_invitation_token: ['Invitation token (shown once): {0}', '邀请码（仅显示一次）：{0}'],
  admin_expires: ['Expires', '过期时间'],
  admin_revoke: ['Revoke', '撤销'],
  admin_file_types: ['File types', '文件类型'],
  admin_extensions: ['Extensions', '扩展名'],
  admin_category: ['Category', '类别'],
  admin_active: ['Active', '启用'],
  admin_save: ['Save', '保存'],
  admin_heartbeat: ['Last heartbeat', '最近心跳'],
  sign_in: ['Sign in', '登录'],
  sign_up: ['Create an account', '注册账号'],
  sign_out: ['Sign out', '退出登录'],
  username: ['Username', '用户名'],
  username_or_email: ['Username or email', '用户名或邮箱'],
  email: ['Email', '邮箱'],
  password: ['Password', '密码'],
  full_name: ['Full name', '姓名'],
  no_account: ['No account yet?', '还没有账号？'],
  have_account: ['Already have an account?', '已有账号？'],
  signed_in_as: ['Signed in as {0}', '已登录：{0}'],
  invitation: ['Invitation', '邀请码'],
  invitation_hint: ['The token an administrator gave you (not needed for the first account)', '管理员发给你的邀请码（第一个账号无需填写）'],
  kbs_title: ['Knowledge bases', '知识库'],
  kb_new: ['New knowledge base', '新建知识库'],
  name: ['Name', '名称'],
  description: ['Description', '描述'],
  status: ['Status', '状态'],
  documents: ['Documents', '文档'],
  chunks: ['Chunks', '分块'],
  size: ['Size', '大小'],
  updated: ['Updated', '更新时间'],
  kbs_empty: ['No knowledge bases yet. Create one to upload documents.', '还没有知识库。新建一个即可上传文档。'],
  tab_documents: ['Documents', '文档'],
  tab_settings: ['Settings', '设置'],
  tab_qa: ['Q&A', '问答'],
  tab_evaluations: ['Evaluations', '评测'],
  open_search: ['Search this knowledge base', '在此知识库中搜索'],
  eval_new: ['New evaluation', '新建评测'],
  eval_questions: ['Golden questions, one a line: question | text the answer contains', '标准问题，每行一条：问题 | 答案中包含的文字'],
  eval_modes: ['Configurations', '配置'],
  eval_run: ['Run', '运行'],
  eval_runs: ['Runs', '评测记录'],
  eval_name: ['Name', '名称'],
  eval_status: ['Status', '状态'],
  eval_config: ['Configuration', '配置'],
  eval_empty: ['No evaluation yet.', '还没有评测。'],
  eval_chart: ['hit@k, MRR and nDCG@10 by configuration', '各配置的 hit@k、MRR 与 nDCG@10'],
  eval_started: ['Evaluation started', '评测已开始'],
  eval_bad_line: ['Line {0} needs "question | expected text"', '第 {0} 行需要“问题 | 期望文字”'],
  qa_question: ['Question', '问题'],
  qa_answer: ['Answer', '答案'],
  qa_empty: ['No Q&A entries yet: import a table or add one below.', '还没有问答条目：导入表格或在下方添加。'],
  qa_filter: ['Filter entries', '筛选条目'],
  qa_import: ['Import a table (CSV, TSV, XLSX, XLS, ODS)', '导入表格（CSV、TSV、XLSX、XLS、ODS）'],
  qa_import_hint: ['Columns headed question and answer (问题 and 答案 work too).', '表头为“问题”和“答案”（question、answer 也可以）。'],
  qa_match_answer: ['Also match the answer', '同时匹配答案'],
  qa_imported: ['Importing {0}…', '正在导入 {0}…'],
  qa_add: ['Add an entry', '添加条目'],
  qa_added: ['Entry added', '条目已添加'],
  qa_collection: ['Add to', '添加到'],
  qa_new_collection: ['a new Q&A list', '新的问答列表'],
  qa_count: ['{0} entries', '{0} 条'],
  qa_upload: ['Import', '导入'],
  qg_title: ['Questions per chunk', '为分块生成问题'],
  qg_off: ['off', '关闭'],
  qg_count: ['Questions per chunk', '每个分块的问题数'],
  sum_title: ['Chunk summaries', '分块摘要'],
  sum_hint: ['Your chat model says in a sentence or two what each new chunk is about within its document; search by summary finds the chunk by it. Off: a summary is drawn from the title, the section and the chunk\'s most central sentences. Uses your provider key and costs tokens.', '由你的对话模型用一两句话说明每个新分块在文档中讲什么，按摘要搜索时据此找到分块。关闭时，摘要取自标题、章节和分块中最核心的句子。使用你的服务商密钥，会消耗 token。'],
  qg_hint: ['Your chat model writes the questions each new chunk answers; search finds the chunk by them too. Uses your provider key (Settings) and costs tokens.', '由你的对话模型为每个新分块写出它能回答的问题，搜索也会通过这些问题找到分块。使用你在设置中的服务商密钥，会消耗 token。'],
  drop_here: ['Drop files here, or choose them', '把文件拖到这里，或点击选择'],
  choose_files: ['Files to upload', '要上传的文件'],
  uploading: ['Uploading {0}%', '上传中 {0}%'],
  queued: ['Queued', '排队中'],
  processing: ['Processing {0}%', '处理中 {0}%'],
  completed_chunks: ['Completed, chunks: {0}', '已完成，分块数：{0}'],
  duplicate: ['Already in this knowledge base: the existing document is kept', '知识库中已有相同文档，保留原文档'],
  failed: ['Failed', '失败'],
  show_deleted: ['Show deleted documents', '显示已删除的文档'],
  file: ['File', '文件'],
  created: ['Created', '创建时间'],
  docs_empty: ['No documents yet.', '还没有文档。'],
  deleted: ['deleted', '已删除'],
  archive: ['Archive', '归档'],
  unarchive: ['Reactivate', '重新启用'],
  delete_kb: ['Delete this knowledge base', '删除此知识库'],
  chunking: ['Chunking', '分块'],
  chunking_describe: ['Describe how to split, in your own words', '用自己的话描述如何切分'],
  chunking_describe_hint: ['For example: “split by paragraph, at most 500 characters” or “按段落切分，每块不超过500字”.', '例如：“按段落切分，每块不超过500字”或“split by paragraph, at most 500 characters”。'],
  generate: ['Generate the configuration', '生成配置'],
  understood: ['Understood: {0}', '理解为：{0}'],
  chunking_config: ['Chunking configuration (JSON)', '分块配置（JSON）'],
  chunking_default: ['Leave empty for the default: a document the embedding model reads at once stays whole; a longer one is cut between paragraphs, by the model\'s tokens', '留空则使用默认配置：嵌入模型一次读得完的文档保持完整，更长的按模型的 token 在段落之间切分'],
  preview: ['Live preview', '实时预览'],
  preview_text: ['Sample text to preview', '用于预览的示例文本'],
  preview_count: ['Chunks: {0}', '{0} 个分块'],
  chunk_n: ['Chunk {0}', '分块 {0}'],
  size_unit: ['{0} {1}', '{0} {1}'],
  embedding: ['Embedding model', '向量模型'],
  provider: ['Provider', '提供方'],
  model: ['Model', '模型'],
  dimensions: ['Dimensions', '维度'],
  embedding_hint: ['Changing the model re-embeds the knowledge base in the background; search keeps answering meanwhile.', '更换模型后会在后台重新向量化，期间搜索照常可用。'],
  search_defaults: ['Search defaults', '搜索默认值'],
  mode: ['Mode', '模式'],
  top_k: ['Results (top k)', '结果数（top k）'],
  threshold: ['Similarity threshold', '相似度阈值'],
  invalid_json: ['{0} is not valid JSON', '{0} 不是有效的 JSON'],
  file_type: ['Type', '类型'],
  processed: ['Processed', '处理时间'],
  processing_log: ['Processing log', '处理日志'],
  parent_of: ['Parent chunk with {0} children', '父分块，含 {0} 个子分块'],
  child: ['child', '子分块'],
  chunk_edit: ['Edit', '编辑'],
  chunk_save: ['Save', '保存'],
  chunk_cancel: ['Cancel', '取消'],
  chunk_disable: ['Disable', '停用'],
  chunk_enable: ['Enable', '启用'],
  chunk_disabled: ['disabled: no search returns it', '已停用：不会出现在搜索结果中'],
  chunk_edited: ['edited by hand', '已手工编辑'],
  chunk_add: ['Add a chunk', '添加分块'],
  chunk_text: ['Chunk text', '分块内容'],
  chunk_saved: ['Chunk saved and re-indexed', '分块已保存并重新索引'],
  chunk_added: ['Chunk added', '分块已添加'],
  search_title: ['Search playground', '搜索测试台'],
  query: ['Query', '查询'],
  knowledge_bases: ['Knowledge bases', '知识库'],
  target: ['Compare with', '比对对象'],
  target_content: ['content', '正文'],
  target_summary: ['summary', '摘要'],
  target_both: ['both', '两者'],
  search_go: ['Search', '搜索'],
  results_count: ['{0} results in {1} ms (server {2} ms)', '{0} 条结果，用时 {1} 毫秒（服务端 {2} 毫秒）'],
  no_results: ['No results.', '没有结果。'],
  score: ['score {0}', '得分 {0}'],
  vector_score: ['vector {0}', '向量 {0}'],
  fulltext_score: ['full text {0}', '全文 {0}'],
  agents_title: ['Agents', '智能体'],
  agent_new: ['New agent', '新建智能体'],
  agent_edit: ['Agent settings', '智能体设置'],
  agents_empty: ['No agents yet.', '还没有智能体。'],
  agent_type: ['Type', '类型'],
  model_provider: ['Model provider', '模型提供方'],
  model_name: ['Model name', '模型名称'],
  model_parameters: ['Model parameters (JSON)', '模型参数（JSON）'],
  conversation_mode: ['Conversation mode', '对话模式'],
  single_turn: ['single turn', '单轮'],
  multi_turn: ['multi turn', '多轮'],
  context_window: ['Context window (messages)', '上下文窗口（消息数）'],
  memory_days: ['Memory retention (days)', '记忆保留（天）'],
  system_prompt: ['System prompt', '系统提示词'],
  user_prompt_template: ['User prompt template', '用户提示词模板'],
  max_documents: ['Passages per answer', '每次回答引用的段落数'],
  rate_hour: ['Rate limit per hour', '每小时调用上限'],
  rate_day: ['Rate limit per day', '每天调用上限'],
  domain_keywords: ['Domain keywords (comma separated)', '领域关键词（逗号分隔）'],
  expertise: ['Expertise areas (comma separated)', '专长领域（逗号分隔）'],
  active: ['Active', '启用'],
  data_sources: ['Data sources', '数据源'],
  file_types: ['File types', '文件类型'],
  chat: ['Chat', '对话'],
  new_conversation: ['New conversation', '新对话'],
  conversation: ['Conversation', '对话'],
  message: ['Your message', '你的消息'],
  send: ['Send', '发送'],
  sources_cited: ['Sources', '来源'],
  page_n: ['p. {0}', '第 {0} 页'],
  pages_n: ['pp. {0}–{1}', '第 {0}–{1} 页'],
  cited_region: ['Where the cited passage stands', '引用内容在原文中的位置'],
  open_page: ['Open the original at page {0}', '在原文第 {0} 页打开'],
  thinking: ['Answering…', '正在回答…'],
  save_agent_first: ['Save the agent to chat with it.', '保存智能体后即可对话。'],
  extractive_note: ['No language model: the answer quotes the passages.', '未配置语言模型：回答直接引用原文段落。'],
  keys_title: ['API keys', 'API 密钥'],
  key_new: ['New API key', '新建 API 密钥'],
  scopes: ['Scopes', '权限范围'],
  knowledge_base: ['Knowledge base', '知识库'],
  expires_days: ['Expires in (days)', '有效期（天）'],
  rate_limit: ['Requests per minute', '每分钟请求数'],
  daily_quota: ['Daily quota', '每日配额'],
  monthly_quota: ['Monthly quota', '每月配额'],
  allowed_ips: ['Allowed IP addresses or networks (comma separated)', '允许的 IP 或网段（逗号分隔）'],
  allowed_origins: ['Allowed origins (comma separated)', '允许的来源（逗号分隔）'],
  key_once: ['Copy this key now. It is shown only once.', '请立即复制此密钥，它只显示这一次。'],
  copy: ['Copy', '复制'],
  copied: ['Copied', '已复制'],
  key: ['Key', '密钥'],
  usage_today: ['Today', '今日'],
  usage_month: ['This month', '本月'],
  expires: ['Expires', '过期时间'],
  last_used: ['Last used', '最近使用'],
  revoke: ['Revoke', '吊销'],
  revoked: ['revoked', '已吊销'],
  expired: ['expired', '已过期'],
  keys_empty: ['No API keys yet.', '还没有 API 密钥。'],
  never: ['never', '从未'],
  confirm_revoke: ['Revoke the key “{0}”? Applications using it stop working at once.', '吊销密钥“{0}”？使用它的应用会立即失效。'],
  usage_title: ['Usage', '用量'],
  range: ['Period', '时间范围'],
  last_days: ['Last {0} days', '最近 {0} 天'],
  api_calls: ['API calls per day', '每日 API 调用'],
  agent_tokens: ['Agent tokens per day', '智能体每日 token 数'],
  agent_cost: ['Agent cost per day (USD)', '智能体每日费用（美元）'],
  total: ['Total: {0}', '合计：{0}'],
  day: ['Day', '日期'],
  value: ['Value', '数值'],
  chart_data: ['Data as a table', '以表格查看数据'],
  no_data: ['No data in this period.', '此期间没有数据。'],
  sources_title: ['Data sources', '数据源'],
  source_new: ['New data source (local folder)', '新建数据源（本地文件夹）'],
  folder: ['Folder path on the server', '服务器上的文件夹路径'],
  include: ['Include globs (comma separated)', '包含的通配符（逗号分隔）'],
  exclude: ['Exclude globs (comma separated)', '排除的通配符（逗号分隔）'],
  auto_sync: ['Sync automatically', '自动同步'],
  frequency: ['Every (minutes)', '间隔（分钟）'],
  last_sync: ['Last sync', '上次同步'],
  sync_now: ['Sync now', '立即同步'],
  history: ['History', '同步历史'],
  sync_started: ['Sync started', '已开始同步'],
  added: ['Added', '新增'],
  updated_n: ['Updated', '更新'],
  removed: ['Removed', '移除'],
  sources_empty: ['No data sources yet.', '还没有数据源。'],
  notifications_title: ['Notifications', '通知'],
  notifications_empty: ['Nothing to report.', '暂无通知。'],
  settings_title: ['Settings', '设置'],
  retention: ['Retention', '保留期限'],
  doc_retention: ['Delete documents after (days)', '文档保留（天）'],
  conv_retention: ['Delete conversations after (days)', '对话保留（天）'],
  defaults: ['Defaults', '默认值'],
  chunk_size: ['Chunk size', '分块大小'],
  chunk_overlap: ['Chunk overlap', '分块重叠'],
  max_results: ['Maximum search results', '最多搜索结果数'],
  default_model: ['Default embedding model', '默认向量模型'],
  notify_switches: ['Notifications', '通知'],
  sync_notifications: ['Tell me when a sync changes something', '同步有变化时通知我'],
  error_notifications: ['Tell me when something fails', '出错时通知我'],
  providers: ['Model providers', '模型提供方'],
  provider_key: ['{0} API key', '{0} API 密钥'],
  provider_url: ['{0} base URL', '{0} 接口地址'],
  key_stored: ['stored: {0}', '已保存：{0}'],
  key_keep: ['leave empty to keep', '留空则不修改'],
  webhook: ['Webhook', 'Webhook'],
  webhook_url: ['Webhook URL', 'Webhook 地址'],
  webhook_secret: ['Webhook secret', 'Webhook 密钥'],
  change_password: ['Change password', '修改密码'],
  current_password: ['Current password', '当前密码'],
  new_password: ['New password', '新密码'],
  password_changed: ['Password changed', '密码已修改'],
  sign_out_all: ['Sign out everywhere', '退出所有设备'],
  not_found: ['Not found', '未找到'],
  back: ['Back', '返回'],
  original_file: ['Original file', '原始文件'],
  original_of: ['Original file of {0}', '{0} 的原始文件'],
  st_pending: ['pending', '排队中'],
  st_processing: ['processing', '处理中'],
  st_completed: ['completed', '已完成'],
  st_failed: ['failed', '失败'],
  st_active: ['active', '正常'],
  st_archived: ['archived', '已归档'],
  st_syncing: ['syncing', '同步中'],
  st_paused: ['paused', '已暂停'],
  st_error: ['error', '出错'],
  st_running: ['running', '进行中'],
};

let lang = localStorage.getItem('lore_lang') ||
  ((navigator.languages || [navigator.language || 'en']).some((l) => /^zh/i.test(l)) ? 'zh' : 'en');

function t(key, ...args) {
  const texts = STRINGS[key];
  // The language's string, else the English one (indexOf gives -1 for a language the table lacks).
  const text = (texts && (texts[LANGS.indexOf(lang)] || texts[0])) || key;
  return text.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)] ?? ''));
}

function setLang(next) {
  lang = next;
  localStorage.setItem('lore_lang', next);
  render();
}

// ---------------------------------------------------------------------------------- DOM

/** Builds an element. Strings become text nodes: nothing here is ever parsed as HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'for') el.htmlFor = value;
    else if (key === 'value') el.value = value;
    else if (key === 'checked') el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Appends children, skipping null/false and flattening arrays (Element.append would print "null"). */
function add(el, ...children) {
  return append(el, children);
}

function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let uid = 0;
/** A labelled form control; `input` gets an id its label points at. */
function field(label, input, hint) {
  input.id = input.id || `f${++uid}`;
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input,
    hint ? h('span', { class: 'muted' }, hint) : null);
}

function checkbox(label, attrs) {
  return h('label', { class: 'check' }, h('input', { type: 'checkbox', ...attrs }), label);
}

function toast(message, bad) {
  const box = h('div', { class: bad ? 'bad' : '' }, message);
  document.getElementById('toast').append(box);
  setTimeout(() => box.remove(), bad ? 8000 : 3500);
}

function errorText(e) {
  return e && e.code ? `${e.message} (${e.code})` : String((e && e.message) || e);
}

function fail(e) {
  toast(`${t('error_prefix')}: ${errorText(e)}`, true);
}

/** Runs a form's action with its submit button disabled, reporting errors. */
function onSubmit(form, action) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll('button[type=submit]');
    buttons.forEach((b) => { b.disabled = true; });
    try { await action(); } catch (e) { fail(e); } finally { buttons.forEach((b) => { b.disabled = false; }); }
  });
  return form;
}

function fmtBytes(n) {
  if (!Number.isFinite(n)) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function fmtTime(s) {
  if (!s) return '—';
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString(lang === 'zh' ? 'zh-CN' : 'en');
}

function badge(status, label) {
  const word = STRINGS[`st_${status}`] ? t(`st_${status}`) : status;
  return h('span', { class: `badge ${status}` }, label || word);
}

function numberOrNull(value) {
  const s = String(value ?? '').trim();
  return s === '' ? null : Number(s);
}

function listOf(value) {
  return String(value || '').split(/[,，]/).map((s) => s.trim()).filter(Boolean);
}

function parseJson(label, text) {
  const s = text.trim();
  if (!s) return null;
  try { return JSON.parse(s); } catch { throw new Error(t('invalid_json', label)); }
}

/** Renders the server's search highlight (HTML-escaped text with <mark>) as text nodes. */
function highlighted(markup) {
  const out = document.createDocumentFragment();
  let marked = false;
  for (const part of String(markup || '').split(/(<mark>|<\/mark>)/)) {
    if (part === '<mark>') { marked = true; continue; }
    if (part === '</mark>') { marked = false; continue; }
    const text = decodeEntities(part);
    out.append(marked ? h('mark', {}, text) : document.createTextNode(text));
  }
  return out;
}

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|amp|quot|apos);/gi, (_, e) => {
    const named = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }[e.toLowerCase()];
    if (named) return named;
    const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return Number.isFinite(code) ? String.fromCodePoint(code) : '';
  });
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG chart, W by H, with its axis drawn: a baseline `bottom` above its foot, from `left` to
 * W - `right`, marked 0, and `topLabel` near `top`. `el(tag, attrs, text)` adds an element to it. */
function svgChart(id, ariaLabel, { W, H, left, right, bottom, top }, topLabel) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  const el = (tag, attrs, text) => {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', ariaLabel);
  svg.id = id;
  el('line', { x1: left, y1: H - bottom, x2: W - right, y2: H - bottom, stroke: '#8a94a1' });
  el('text', { x: left - 6, y: top + 8, 'text-anchor': 'end' }, topLabel);
  el('text', { x: left - 6, y: H - bottom, 'text-anchor': 'end' }, '0');
  return { svg, el };
}

/** Gives an SVG element a tooltip (a `title` child). */
function svgTooltip(node, text) {
  const tip = document.createElementNS(SVG_NS, 'title');
  tip.textContent = text;
  node.append(tip);
}

// ---------------------------------------------------------------------------------- API

let session = null;
/** The workspaces the signed-in person may act in, and the one the console acts in (remembered
 *  per browser; the person's own when unset). */
let workspaces = [];
let workspace = localStorage.getItem('lore_workspace') || '';

function currentWorkspace() {
  return workspaces.find((w) => w.id === workspace) || workspaces.find((w) => w.personal) || null;
}

function setWorkspace(id) {
  workspace = id;
  localStorage.setItem('lore_workspace', id);
}

async function loadWorkspaces() {
  // Asked without a workspace header: the list is the person's, whoever signed in before.
  workspaces = [];
  workspaces = session ? (await api('GET', '/v1/workspaces')).data : [];
  if (!currentWorkspace() || !workspaces.some((w) => w.id === workspace)) setWorkspace(workspaces.length ? workspaces[0].id : '');
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function authHeaders() {
  if (!session) return {};
  const ws = currentWorkspace();
  return ws && !ws.personal ? { 'X-CSRF-Token': session.csrf_token, 'X-Lore-Workspace': ws.id } : { 'X-CSRF-Token': session.csrf_token };
}

/** A link the browser follows by itself (a download, an image) names the workspace in its query. */
function inWorkspace(href) {
  const ws = currentWorkspace();
  return ws && !ws.personal ? `${href}${href.includes('?') ? '&' : '?'}workspace=${encodeURIComponent(ws.id)}` : href;
}

async function api(method, path, body) {
  const headers = authHeaders();
  let payload;
  if (body !== undefined) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) throw apiError(res.status, data, path);
  return data;
}

function apiError(status, data, path) {
  const err = (data && data.error) || {};
  if (status === 401 && !String(path).startsWith('/console/')) {
    session = null;
    go('#/signin');
  }
  // Removed from the team the console was acting in: back to the person's own workspace.
  if (status === 404 && err.message === 'no such workspace' && currentWorkspace() && !currentWorkspace().personal) {
    setWorkspace('');
    loadWorkspaces().then(() => go('#/kbs')).catch(() => {});
  }
  return new ApiError(status, err.code || `http_${status}`, err.message || `HTTP ${status}`);
}

// ---------------------------------------------------------------------------------- routing

const ROUTES = [
  [/^\/signin$/, pageSignIn, true],
  [/^\/signup$/, pageSignUp, true],
  [/^\/kbs$/, pageKnowledgeBases],
  [/^\/kbs\/([\w-]+)$/, pageKnowledgeBase],
  [/^\/docs\/([\w-]+)$/, pageDocument],
  [/^\/search$/, pageSearch],
  [/^\/agents$/, pageAgents],
  [/^\/agents\/new$/, pageAgent],
  [/^\/agents\/([\w-]+)$/, pageAgent],
  [/^\/keys$/, pageKeys],
  [/^\/usage$/, pageUsage],
  [/^\/sources$/, pageSources],
  [/^\/notifications$/, pageNotifications],
  [/^\/audit$/, pageAudit],
  [/^\/team$/, pageTeam],
  [/^\/join$/, pageJoin],
  [/^\/settings$/, pageSettings],
  [/^\/admin$/, pageAdmin],
];

/** Timers and streams of the current page, stopped when the page changes. */
let pageCleanups = [];
function onLeave(fn) { pageCleanups.push(fn); }
function every(ms, fn) {
  const id = setInterval(fn, ms);
  onLeave(() => clearInterval(id));
}

function go(hash) {
  if (location.hash === hash) render(); else location.hash = hash;
}

function currentRoute() {
  const raw = location.hash.replace(/^#/, '') || '/kbs';
  const [path, query] = raw.split('?');
  return { path, query: new URLSearchParams(query || '') };
}

let renderSeq = 0;
async function render() {
  pageCleanups.forEach((fn) => fn());
  pageCleanups = [];
  const seq = ++renderSeq;
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.getElementById('skip-link').textContent = t('skip');
  const { path, query } = currentRoute();
  const match = ROUTES.map(([re, page, open]) => [path.match(re), page, open]).find(([m]) => m);
  renderNav(path);
  const main = clear(document.getElementById('main'));
  if (!match) { add(main, h('h1', {}, t('not_found'))); return; }
  const [m, page, open] = match;
  if (!open && !session) {
    if (path === '/join' && query.get('token')) sessionStorage.setItem('lore_join', query.get('token'));
    go('#/signin');
    return;
  }
  if (open && session) { go('#/kbs'); return; }
  add(main, h('p', { class: 'muted' }, t('loading')));
  try {
    const content = document.createElement('div');
    await page(content, m[1], query);
    if (seq !== renderSeq) return;
    add(clear(main), content);
    const heading = main.querySelector('h1');
    if (heading) document.title = `${heading.textContent} · Lore`;
  } catch (e) {
    if (seq !== renderSeq) return;
    add(clear(main), h('h1', {}, t('error_prefix')), h('p', { class: 'error', role: 'alert' }, errorText(e)));
  }
}

function renderNav(path) {
  const top = clear(document.getElementById('top'));
  const link = (hash, key) => h('a', { href: hash, 'aria-current': path.startsWith(hash.slice(1)) ? 'page' : null, id: `nav-${key.slice(4)}` }, t(key));
  const nav = h('nav', { 'aria-label': 'Lore' }, h('span', { class: 'brand' }, 'Lore'));
  if (session) {
    append(nav, [link('#/kbs', 'nav_kbs'), link('#/search', 'nav_search'), link('#/agents', 'nav_agents'),
      link('#/keys', 'nav_keys'), link('#/usage', 'nav_usage'), link('#/sources', 'nav_sources'),
      link('#/notifications', 'nav_notifications'), link('#/audit', 'nav_audit'), link('#/team', 'nav_team'),
      link('#/settings', 'nav_settings')]);
    if (session.user && session.user.is_superuser) append(nav, [link('#/admin', 'nav_admin')]);
  }
  add(nav, h('span', { class: 'spacer' }));
  if (session && workspaces.length) {
    const label = (w) => (w.personal ? t('workspace_personal', w.name) : `${w.name} · ${t(`role_${w.role}`)}`);
    const current = currentWorkspace();
    const select = h('select', { id: 'workspace-switch', 'aria-label': t('workspace_label') },
      workspaces.map((w) => h('option', { value: w.id, selected: current && w.id === current.id }, label(w))));
    select.addEventListener('change', () => { setWorkspace(select.value); go('#/kbs'); });
    add(nav, select);
  }
  if (session) add(nav, h('span', { class: 'who' }, t('signed_in_as', session.user.username)));
  add(nav, h('button', { class: 'link', id: 'lang-switch', type: 'button', 'aria-label': t('switch_lang_label'), lang: lang === 'zh' ? 'en' : 'zh', onclick: () => setLang(lang === 'zh' ? 'en' : 'zh') }, t('switch_lang')));
  if (session) {
    add(nav, h('button', { class: 'link', id: 'sign-out', type: 'button', onclick: signOut }, t('sign_out')));
  }
  add(top, nav);
}

async function signOut() {
  try { await api('DELETE', '/console/session'); } catch (e) { if (e.status !== 401) { fail(e); return; } }
  session = null;
  workspaces = [];
  go('#/signin');
}

// ---------------------------------------------------------------------------------- accounts

async function pageSignIn(root) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card auth', id: 'signin-form' },
    h('h1', {}, t('sign_in')), field(t('username_or_email'), user), field(t('password'), pass),
    h('button', { type: 'submit' }, t('sign_in')),
    h('p', {}, t('no_account'), ' ', h('a', { href: '#/signup', id: 'to-signup' }, t('sign_up'))));
  onSubmit(form, async () => {
    session = await api('POST', '/console/session', { username: user.value, password: pass.value });
    await loadWorkspaces();
    go(afterSignIn());
  });
  add(root, form);
}

async function pageSignUp(root, _, query) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true });
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true });
  const full = h('input', { name: 'full_name', autocomplete: 'name' });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  // An invitation link may carry the token: #/signup?invitation=inv_...
  const invitation = h('input', {
    name: 'invitation', autocomplete: 'off', value: query.get('invitation') || '', title: t('invitation_hint'),
  });
  const form = h('form', { class: 'card auth', id: 'signup-form' },
    h('h1', {}, t('sign_up')), field(t('username'), user), field(t('email'), email),
    field(`${t('full_name')} (${t('optional')})`, full), field(t('password'), pass),
    field(`${t('invitation')} (${t('optional')})`, invitation),
    h('button', { type: 'submit' }, t('sign_up')),
    h('p', {}, t('have_account'), ' ', h('a', { href: '#/signin' }, t('sign_in'))));
  onSubmit(form, async () => {
    session = await api('POST', '/console/register', {
      username: user.value, email: email.value, password: pass.value, full_name: full.value || null,
      invitation: invitation.value.trim() || null,
    });
    await loadWorkspaces();
    go(afterSignIn());
  });
  add(root, form);
}

// ---------------------------------------------------------------------------------- knowledge bases

async function pageKnowledgeBases(root) {
  const tableHolder = h('div');
  const draw = async () => {
    const { data } = await api('GET', '/v1/knowledge-bases?limit=500');
    clear(tableHolder);
    if (!data.length) { add(tableHolder, h('p', { class: 'muted' }, t('kbs_empty'))); return; }
    add(tableHolder, h('div', { class: 'table-wrap' }, h('table', { id: 'kb-table' },
      h('thead', {}, h('tr', {}, [t('name'), t('status'), t('documents'), t('chunks'), t('size'), t('updated')].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, data.map((kb) => h('tr', { 'data-kb': kb.id },
        h('td', {}, h('a', { href: `#/kbs/${kb.id}` }, kb.name), sharedIn(kb) ? [' ', badge('shared', t('kb_shared_badge'))] : null,
          kb.description ? h('div', { class: 'muted' }, kb.description) : null),
        h('td', {}, badge(kb.status)), h('td', { class: 'doc-count' }, kb.document_count), h('td', {}, kb.chunk_count),
        h('td', {}, fmtBytes(kb.total_size_bytes)), h('td', {}, fmtTime(kb.last_updated_at || kb.updated_at))))))));
  };
  await draw();
  every(5000, () => draw().catch(() => {}));
  const name = h('input', { name: 'name', required: true, maxlength: 255 });
  const desc = h('input', { name: 'description' });
  const form = h('form', { class: 'card', id: 'kb-create' }, h('h2', {}, t('kb_new')),
    h('div', { class: 'row' }, field(t('name'), name), field(t('description'), desc),
      h('div', { class: 'field' }, h('button', { type: 'submit' }, t('create')))));
  onSubmit(form, async () => {
    const kb = await api('POST', '/v1/knowledge-bases', { name: name.value, description: desc.value || null });
    go(`#/kbs/${kb.id}`);
  });
  add(root, h('h1', {}, t('kbs_title')), tableHolder, form);
}

/** Whether a knowledge base is shared into the current workspace from another (read-only here). */
function sharedIn(kb) {
  const ws = currentWorkspace();
  return Boolean(ws && kb.workspace_id && kb.workspace_id !== ws.id);
}

async function pageKnowledgeBase(root, id, query) {
  const kb = await api('GET', `/v1/knowledge-bases/${id}`);
  if (sharedIn(kb)) {
    const { data } = await api('GET', `/v1/knowledge-bases/${id}/documents?limit=500`);
    add(root, h('h1', {}, kb.name), h('p', { class: 'muted', id: 'kb-shared-note' }, t('kb_shared_note')),
      h('p', {}, h('a', { href: `#/search?kb=${id}`, id: 'kb-shared-search' }, t('open_search'))),
      h('ul', { class: 'card', id: 'shared-docs' }, data.map((d) => h('li', {}, h('a', { href: `#/docs/${d.id}` }, d.title || d.filename)))));
    return;
  }
  const tab = ['settings', 'qa', 'evaluations'].includes(query.get('tab')) ? query.get('tab') : 'documents';
  const stats = h('div', { class: 'stats card', id: 'kb-stats' });
  const drawStats = (k) => {
    add(clear(stats), 
      h('div', { class: 'stat' }, h('b', { id: 'stat-docs' }, k.document_count), t('documents')),
      h('div', { class: 'stat' }, h('b', { id: 'stat-chunks' }, k.chunk_count), t('chunks')),
      h('div', { class: 'stat' }, h('b', {}, fmtBytes(k.total_size_bytes)), t('size')),
      h('div', { class: 'stat' }, h('b', {}, badge(k.status)), t('status')),
      h('div', { class: 'stat' }, h('b', {}, k.embedding_space || '—'), t('embedding')));
  };
  drawStats(kb);
  every(3000, async () => { try { drawStats(await api('GET', `/v1/knowledge-bases/${id}`)); } catch { /* next tick */ } });
  const tabLink = (name, label) => h('a', { href: `#/kbs/${id}${name === 'documents' ? '' : `?tab=${name}`}`, 'aria-current': tab === name ? 'page' : null, id: `tab-${name}` }, label);
  add(root, h('h1', {}, kb.name), kb.description ? h('p', { class: 'muted' }, kb.description) : null, stats,
    h('nav', { class: 'tabs', 'aria-label': kb.name }, tabLink('documents', t('tab_documents')), tabLink('qa', t('tab_qa')),
      tabLink('evaluations', t('tab_evaluations')), tabLink('settings', t('tab_settings')), h('a', { href: `#/search?kb=${id}` }, t('open_search'))));
  const tabs = { settings: kbSettings, qa: kbQa, evaluations: kbEvaluations, documents: kbDocuments };
  await tabs[tab](root, kb);
}

async function kbDocuments(root, kb) {
  const list = h('div', { id: 'doc-list' });
  const showDeleted = h('input', { type: 'checkbox', id: 'show-deleted' });
  const drawList = async () => {
    const params = `limit=500${showDeleted.checked ? '&include_deleted=true' : ''}`;
    const { data } = await api('GET', `/v1/knowledge-bases/${kb.id}/documents?${params}`);
    clear(list);
    if (!data.length) { add(list, h('p', { class: 'muted' }, t('docs_empty'))); return; }
    add(list, h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, [t('file'), t('status'), t('chunks'), t('size'), t('created'), ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, data.map((doc) => {
        const deleted = Boolean(doc.soft_deleted_at);
        const action = deleted
          ? h('button', { type: 'button', class: 'secondary', onclick: () => act(() => api('POST', `/v1/documents/${doc.id}/restore`, {})) }, t('restore'))
          : h('button', { type: 'button', class: 'secondary', 'aria-label': `${t('delete')} ${doc.filename}`, onclick: () => act(() => api('DELETE', `/v1/documents/${doc.id}`)) }, t('delete'));
        return h('tr', { 'data-doc': doc.id, 'data-status': doc.status },
          h('td', {}, h('a', { href: `#/docs/${doc.id}` }, doc.filename), doc.title && doc.title !== doc.filename ? h('div', { class: 'muted' }, doc.title) : null),
          h('td', {}, badge(doc.status, doc.status === 'processing' ? `${t('st_processing')} ${doc.progress}%` : null), deleted ? [' ', badge('deleted', t('deleted'))] : null,
            doc.error_message ? h('div', { class: 'error' }, `${doc.error_message} (${doc.error_code})`) : null),
          h('td', {}, doc.chunk_count), h('td', {}, fmtBytes(doc.file_size)), h('td', {}, fmtTime(doc.created_at)), h('td', {}, action));
      })))));
  };
  const act = async (fn) => { try { await fn(); await drawList(); } catch (e) { fail(e); } };
  showDeleted.addEventListener('change', () => drawList().catch(fail));
  const uploads = h('ul', { class: 'uploads', id: 'uploads', 'aria-live': 'polite' });
  const input = h('input', { type: 'file', multiple: true, id: 'file-input', 'aria-label': t('choose_files') });
  const drop = h('label', { class: 'drop', id: 'dropzone', for: input.id }, t('drop_here'), input);
  const start = (files) => { for (const file of files) uploadFile(kb.id, file, uploads, () => drawList().catch(() => {})); };
  input.addEventListener('change', () => { start(Array.from(input.files)); input.value = ''; });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); start(Array.from(e.dataTransfer.files)); });
  await drawList();
  every(4000, () => drawList().catch(() => {}));
  add(root, drop, uploads, h('p', {}, h('label', { class: 'check', for: showDeleted.id }, showDeleted, t('show_deleted'))), list);
}

/** Uploads one file with live progress, then follows its processing until it settles. */
function uploadFile(kbId, file, list, settled) {
  const bar = h('progress', { max: 100, value: 0, 'aria-label': file.name });
  const status = h('span', { class: 'upload-status' }, t('uploading', 0));
  const row = h('li', { 'data-file': file.name }, h('strong', {}, file.name), bar, status);
  add(list, row);
  const show = (state, text, value) => {
    row.dataset.state = state;
    add(clear(status), text);
    if (value !== undefined) bar.value = value;
  };
  const form = new FormData();
  form.append('file', file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open('POST', `/v1/knowledge-bases/${kbId}/documents`);
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  // The upload takes the first half of the bar, processing the second.
  xhr.upload.addEventListener('progress', (e) => {
    if (e.lengthComputable) show('uploading', t('uploading', Math.round((100 * e.loaded) / e.total)), (50 * e.loaded) / e.total);
  });
  xhr.addEventListener('error', () => show('failed', `${t('failed')}: network error`));
  xhr.addEventListener('load', () => {
    let data = null;
    try { data = JSON.parse(xhr.responseText); } catch { data = null; }
    if (xhr.status >= 400 || !data) {
      const err = apiError(xhr.status, data, 'upload');
      show('failed', `${t('failed')}: ${errorText(err)}`, 100);
      return;
    }
    if (data.duplicate) { show('duplicate', t('duplicate'), 100); settled(); return; }
    follow(data.id);
  });
  xhr.send(form);
  const follow = async (docId) => {
    for (;;) {
      let doc;
      try { doc = await api('GET', `/v1/documents/${docId}`); } catch (e) { show('failed', errorText(e)); return; }
      if (doc.status === 'completed') { show('completed', t('completed_chunks', doc.chunk_count), 100); settled(); return; }
      if (doc.status === 'failed') { show('failed', `${t('failed')}: ${doc.error_message} (${doc.error_code})`, 100); settled(); return; }
      show(doc.status, doc.status === 'pending' ? t('queued') : t('processing', doc.progress), 50 + doc.progress / 2);
      await new Promise((r) => setTimeout(r, 800));
    }
  };
}

async function kbSettings(root, kb) {
  const settings = kb.settings || {};
  const name = h('input', { value: kb.name, required: true });
  const desc = h('input', { value: kb.description || '' });
  const nl = h('textarea', { id: 'chunk-description', rows: 2 });
  const config = h('textarea', { class: 'code', id: 'chunk-config', rows: 7, placeholder: t('chunking_default'), value: settings.chunking_config ? JSON.stringify(settings.chunking_config, null, 2) : '' });
  const understood = h('p', { class: 'muted', id: 'understood' });
  const sample = h('textarea', { id: 'preview-text', rows: 5, value: lang === 'zh'
    ? '第一段：知识库把文档切成分块。\n\n第二段：每个分块都会被向量化并建立全文索引。\n\nThird paragraph: search finds the passage that answers a question.'
    : 'First paragraph: a knowledge base splits documents into chunks.\n\nSecond paragraph: each chunk is embedded and indexed for full text.\n\n第三段：搜索会找到回答问题的段落。' });
  const preview = h('div', { id: 'preview', 'aria-live': 'polite' });
  const emb = settings.embedding_config || {};
  const provider = h('input', { value: emb.provider || '', placeholder: 'local' });
  const model = h('input', { value: emb.model || '', placeholder: 'multilingual-e5-small' });
  const dims = h('input', { type: 'number', min: 1, value: emb.dimensions ?? '' });
  const sc = settings.search_config || {};
  const mode = h('select', {}, ['', 'hybrid', 'vector', 'fulltext'].map((m) => h('option', { value: m, selected: (sc.default_mode || '') === m }, m || '—')));
  const topK = h('input', { type: 'number', min: 1, max: 100, value: sc.top_k ?? '' });
  const threshold = h('input', { type: 'number', min: 0, max: 1, step: 0.01, value: sc.similarity_threshold ?? '' });
  const qg = settings.question_generation || {};
  const qgProvider = h('select', { id: 'qg-provider' }, ['', 'openai', 'anthropic', 'cohere', 'deepseek', 'qwen', 'vllm', 'ollama', 'llamacpp']
    .map((p) => h('option', { value: p, selected: (qg.provider || '') === p }, p || t('qg_off'))));
  const qgModel = h('input', { id: 'qg-model', value: qg.model || '', placeholder: 'gpt-4o-mini' });
  const qgCount = h('input', { id: 'qg-count', type: 'number', min: 1, max: 10, value: qg.questions_per_chunk ?? 3 });
  const sum = settings.summary_config || {};
  const sumProvider = h('select', { id: 'sum-provider' }, ['', 'openai', 'anthropic', 'cohere', 'deepseek', 'qwen', 'vllm', 'ollama', 'llamacpp']
    .map((p) => h('option', { value: p, selected: (sum.provider || '') === p }, p || t('qg_off'))));
  const sumModel = h('input', { id: 'sum-model', value: sum.model || '', placeholder: 'gpt-4o-mini' });

  let previewTimer = null;
  const runPreview = () => {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(async () => {
      try {
        const body = { text: sample.value, knowledge_base_id: kb.id };
        const cfg = parseJson(t('chunking_config'), config.value);
        if (cfg) body.chunking_config = cfg;
        const res = await api('POST', '/v1/chunking/preview', body);
        add(clear(preview), h('p', { id: 'preview-count' }, t('preview_count', res.chunk_count), ' · ', res.strategy.strategy_type),
          res.chunks.map((c) => h('div', { class: 'chunk-card' }, h('span', { class: 'muted' }, `${t('chunk_n', c.chunk_index + 1)} · ${t('size_unit', c.size, res.size_unit)}`), h('pre', { class: 'chunk' }, c.content))));
      } catch (e) { add(clear(preview), h('p', { class: 'error' }, errorText(e))); }
    }, 350);
  };
  sample.addEventListener('input', runPreview);
  config.addEventListener('input', runPreview);
  onLeave(() => clearTimeout(previewTimer));

  const generate = h('button', { type: 'button', class: 'secondary', id: 'generate-config', onclick: async () => {
    try {
      const res = await api('POST', '/v1/chunking/from-description', { description: nl.value });
      config.value = JSON.stringify(res.chunking_config, null, 2);
      add(clear(understood), t('understood', (res.understood || []).join('; ')), res.warning ? ` — ${res.warning}` : '');
      runPreview();
    } catch (e) { fail(e); }
  } }, t('generate'));

  const form = h('form', { id: 'kb-settings' },
    h('div', { class: 'card' }, h('div', { class: 'row' }, field(t('name'), name), field(t('description'), desc))),
    h('div', { class: 'card' }, h('h2', {}, t('chunking')),
      h('div', { class: 'grid2' },
        h('div', {}, field(t('chunking_describe'), nl, t('chunking_describe_hint')), generate, understood, field(t('chunking_config'), config)),
        h('div', {}, field(t('preview_text'), sample), h('h3', {}, t('preview')), preview))),
    h('div', { class: 'card' }, h('h2', {}, t('embedding')), h('p', { class: 'muted' }, t('embedding_hint')),
      h('div', { class: 'row' }, field(t('provider'), provider), field(t('model'), model), field(t('dimensions'), dims))),
    h('div', { class: 'card' }, h('h2', {}, t('search_defaults')),
      h('div', { class: 'row' }, field(t('mode'), mode), field(t('top_k'), topK), field(t('threshold'), threshold))),
    h('div', { class: 'card' }, h('h2', {}, t('qg_title')), h('p', { class: 'muted' }, t('qg_hint')),
      h('div', { class: 'row' }, field(t('provider'), qgProvider), field(t('model'), qgModel), field(t('qg_count'), qgCount))),
    h('div', { class: 'card' }, h('h2', {}, t('sum_title')), h('p', { class: 'muted' }, t('sum_hint')),
      h('div', { class: 'row' }, field(t('provider'), sumProvider), field(t('model'), sumModel))),
    h('button', { type: 'submit', id: 'kb-save' }, t('save')));
  onSubmit(form, async () => {
    const next = { ...settings };
    next.chunking_config = parseJson(t('chunking_config'), config.value);
    const embedding = { ...emb, provider: provider.value.trim() || undefined, model: model.value.trim() || undefined, dimensions: numberOrNull(dims.value) ?? undefined };
    next.embedding_config = Object.values(embedding).some((v) => v !== undefined) ? embedding : null;
    next.search_config = { ...sc, default_mode: mode.value || null, top_k: numberOrNull(topK.value), similarity_threshold: numberOrNull(threshold.value) };
    next.question_generation = qgProvider.value
      ? { provider: qgProvider.value, model: qgModel.value.trim(), questions_per_chunk: numberOrNull(qgCount.value) ?? 3 }
      : null;
    next.summary_config = sumProvider.value ? { provider: sumProvider.value, model: sumModel.value.trim() } : null;
    await api('PATCH', `/v1/knowledge-bases/${kb.id}`, { name: name.value, description: desc.value || null, settings: next });
    toast(t('saved'));
  });
  const archived = kb.status === 'archived';
  const danger = h('div', { class: 'card' },
    h('button', { type: 'button', class: 'secondary', id: 'kb-archive', onclick: async () => {
      try { await api('PATCH', `/v1/knowledge-bases/${kb.id}`, { status: archived ? 'active' : 'archived' }); render(); } catch (e) { fail(e); }
    } }, archived ? t('unarchive') : t('archive')), ' ',
    h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!window.confirm(t('confirm_delete', kb.name))) return;
      try { await api('DELETE', `/v1/knowledge-bases/${kb.id}`); go('#/kbs'); } catch (e) { fail(e); }
    } }, t('delete_kb')));
  add(root, form, await sharingCard(kb), danger);
  runPreview();
}

/** The workspaces a knowledge base is shared into, and sharing it into another the person is in. */
async function sharingCard(kb) {
  const list = h('ul', { id: 'share-list' });
  const draw = async () => {
    const { data } = await api('GET', `/v1/knowledge-bases/${kb.id}/shares`);
    clear(list);
    if (!data.length) add(list, h('li', { class: 'muted' }, t('none')));
    append(list, data.map((s) => h('li', { 'data-workspace': s.workspace_id }, s.workspace_name, ' ',
      h('button', { type: 'button', class: 'secondary', onclick: async () => {
        try { await api('DELETE', `/v1/knowledge-bases/${kb.id}/shares/${s.workspace_id}`); await draw(); } catch (e) { fail(e); }
      } }, t('kb_unshare')))));
  };
  await draw();
  const others = workspaces.filter((w) => w.id !== kb.workspace_id);
  const target = h('select', { id: 'share-target' },
    others.map((w) => h('option', { value: w.id }, w.personal ? t('workspace_personal', w.name) : w.name)));
  const form = h('form', { class: 'row', id: 'share-form' }, field(t('workspace_label'), target), h('button', { type: 'submit' }, t('kb_share')));
  onSubmit(form, async () => {
    await api('POST', `/v1/knowledge-bases/${kb.id}/shares`, { workspace_id: target.value });
    toast(t('kb_shared'));
    await draw();
  });
  return h('section', { class: 'card', id: 'kb-sharing' }, h('h2', {}, t('kb_sharing')), h('p', { class: 'muted' }, t('kb_sharing_hint')),
    list, others.length ? form : null);
}

// ---------------------------------------------------------------------------------- Q&A

/** A Q&A entry's question and answer, saved as its text and `metadata.qa` (what it is found by). */
function qaEditForm(c, saved, cancel) {
  const qa = c.metadata.qa;
  const question = h('textarea', { class: 'qa-question', rows: 2, required: true });
  const answer = h('textarea', { class: 'qa-answer', rows: 4, required: true });
  question.value = qa.question;
  answer.value = qa.answer;
  const form = h('form', { class: 'qa-edit' }, field(t('qa_question'), question), field(t('qa_answer'), answer),
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'qa-save' }, t('chunk_save')),
      h('button', { type: 'button', class: 'secondary', onclick: cancel }, t('chunk_cancel'))));
  onSubmit(form, async () => {
    const [q, a] = [question.value.trim(), answer.value.trim()];
    await api('PATCH', `/v1/chunks/${c.id}`, { content: `${q}\n${a}`, metadata: { ...c.metadata, qa: { ...qa, question: q, answer: a } } });
    toast(t('chunk_saved'));
    saved();
  });
  setTimeout(() => question.focus(), 0);
  return form;
}

/** A knowledge base's Q&A entries: the rows of its tables imported with the `qa` strategy, and
 *  those added by hand. Imported, added, edited, disabled and enabled here. */
async function kbQa(root, kb) {
  const { data: docs } = await api('GET', `/v1/knowledge-bases/${kb.id}/documents?limit=500`);
  const lists = docs.filter((d) => !d.soft_deleted_at && d.chunking_config && d.chunking_config.strategy_type === 'qa');
  const entries = [];
  for (const d of lists.filter((x) => x.status === 'completed')) {
    const { data } = await api('GET', `/v1/documents/${d.id}/chunks`);
    for (const c of data) if (c.metadata && c.metadata.qa) entries.push(c);
  }
  const filter = h('input', { type: 'search', id: 'qa-filter', 'aria-label': t('qa_filter'), placeholder: t('qa_filter') });
  const body = h('tbody', {});
  const rowOf = (c) => {
    const tr = h('tr', { 'data-chunk': c.id, class: c.enabled === false ? 'disabled' : null });
    const show = () => add(clear(tr),
      h('td', { class: 'qa-q' }, c.metadata.qa.question), h('td', { class: 'qa-a' }, c.metadata.qa.answer),
      h('td', {}, c.enabled === false ? h('span', { class: 'badge paused qa-state' }, t('chunk_disabled')) : null),
      h('td', { class: 'qa-actions' },
        h('button', { type: 'button', class: 'secondary qa-edit-button', onclick: () => {
          add(clear(tr), h('td', { colspan: 4 }, qaEditForm(c, render, show)));
        } }, t('chunk_edit')), ' ',
        h('button', { type: 'button', class: 'secondary qa-toggle', onclick: async () => {
          try { await api('PATCH', `/v1/chunks/${c.id}`, { enabled: c.enabled === false }); toast(t('chunk_saved')); render(); } catch (e) { fail(e); }
        } }, c.enabled === false ? t('chunk_enable') : t('chunk_disable'))));
    show();
    return tr;
  };
  append(body, entries.map(rowOf));
  const narrow = () => {
    const needle = filter.value.trim().toLowerCase();
    entries.forEach((c, i) => {
      const text = `${c.metadata.qa.question}\n${c.metadata.qa.answer}`.toLowerCase();
      body.children[i].hidden = Boolean(needle) && !text.includes(needle);
    });
  };
  // Typing, the search field's clear button, and a field cleared at once all narrow the list.
  for (const event of ['input', 'search', 'change']) filter.addEventListener(event, narrow);
  const table = entries.length
    ? h('div', { class: 'table-wrap' }, h('table', { id: 'qa-table' },
      h('thead', {}, h('tr', {}, [t('qa_question'), t('qa_answer'), '', ''].map((c) => h('th', { scope: 'col' }, c)))), body))
    : h('p', { class: 'muted', id: 'qa-empty' }, t('qa_empty'));

  // Import: the table is uploaded with the qa strategy and read by the server like any upload.
  const file = h('input', { type: 'file', id: 'qa-file', accept: '.csv,.tsv,.xlsx,.xls,.ods', required: true });
  const matchAnswer = h('input', { type: 'checkbox', id: 'qa-match-answer' });
  const uploads = h('ul', { class: 'uploads', id: 'qa-uploads', 'aria-live': 'polite' });
  const importForm = h('form', { class: 'card', id: 'qa-import' }, h('h2', {}, t('qa_import')), h('p', { class: 'muted' }, t('qa_import_hint')),
    field(t('file'), file), h('p', {}, h('label', { class: 'check', for: matchAnswer.id }, matchAnswer, t('qa_match_answer'))),
    h('button', { type: 'submit' }, t('qa_upload')), uploads);
  const qaConfig = (match) => JSON.stringify({ strategy_type: 'qa', config: { match_answer: match } });
  const uploadTable = (blob, filename, match) => {
    const form = new FormData();
    form.append('chunking_config', qaConfig(match));
    form.append('file', blob, filename);
    return fetch(`/v1/knowledge-bases/${kb.id}/documents`, { method: 'POST', headers: authHeaders(), body: form })
      .then(async (r) => { const data = await r.json().catch(() => null); if (!r.ok) throw apiError(r.status, data, 'upload'); return data; });
  };
  const settle = async (docId) => {
    for (;;) {
      const doc = await api('GET', `/v1/documents/${docId}`);
      if (doc.status === 'failed') throw new Error(`${doc.error_message} (${doc.error_code})`);
      if (doc.status === 'completed') return doc;
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  onSubmit(importForm, async () => {
    const chosen = file.files[0];
    add(clear(uploads), h('li', {}, t('qa_imported', chosen.name)));
    const created = await uploadTable(chosen, chosen.name, matchAnswer.checked);
    await settle(created.id);
    render();
  });

  // Added by hand: into a list chosen here, or into a new one made of this first entry.
  const question = h('textarea', { id: 'qa-new-question', rows: 2, required: true });
  const answer = h('textarea', { id: 'qa-new-answer', rows: 3, required: true });
  const target = h('select', { id: 'qa-target' }, lists.filter((d) => d.status === 'completed').map((d) => h('option', { value: d.id }, d.filename)),
    h('option', { value: '' }, t('qa_new_collection')));
  const addForm = h('form', { class: 'card', id: 'qa-add' }, h('h2', {}, t('qa_add')),
    h('div', { class: 'row' }, field(t('qa_question'), question), field(t('qa_answer'), answer), field(t('qa_collection'), target)),
    h('button', { type: 'submit' }, t('qa_add')));
  onSubmit(addForm, async () => {
    const [q, a] = [question.value.trim(), answer.value.trim()];
    if (target.value) {
      await api('POST', `/v1/documents/${target.value}/chunks`, { question: q, answer: a });
    } else {
      const cell = (v) => `"${v.replace(/"/g, '""')}"`;
      const csv = `question,answer\n${cell(q)},${cell(a)}\n`;
      const created = await uploadTable(new Blob([csv], { type: 'text/csv' }), `qa-${new Date().toISOString().slice(0, 10)}.csv`, false);
      await settle(created.id);
    }
    toast(t('qa_added'));
    render();
  });
  add(root, h('p', { class: 'muted', id: 'qa-count' }, t('qa_count', entries.length)), entries.length ? filter : null, table, addForm, importForm);
}

// ---------------------------------------------------------------------------------- evaluations

/** Golden questions run against search configurations; completed runs compared side by side,
 *  with a chart of hit@k, MRR and nDCG@10 per configuration. */
async function kbEvaluations(root, kb) {
  const { data: runs } = await api('GET', `/v1/knowledge-bases/${kb.id}/evaluations`);
  const lines = h('textarea', { id: 'eval-questions', rows: 5, required: true,
    placeholder: lang === 'zh' ? '退款要多久？ | 三十天\nHow fast is shipping? | two business days' : 'How fast is shipping? | two business days\n退款要多久？ | 三十天' });
  const modes = ['hybrid', 'vector', 'fulltext'].map((m) => h('input', { type: 'checkbox', value: m, id: `eval-mode-${m}`, checked: true }));
  const form = h('form', { class: 'card', id: 'eval-form' }, h('h2', {}, t('eval_new')), field(t('eval_questions'), lines),
    h('fieldset', {}, h('legend', {}, t('eval_modes')), modes.map((box) => h('label', { class: 'check', for: box.id }, box, box.value))),
    h('button', { type: 'submit' }, t('eval_run')));
  onSubmit(form, async () => {
    const questions = lines.value.split('\n').map((l) => l.trim()).filter(Boolean).map((line, i) => {
      const [question, answer] = line.split('|').map((s) => (s || '').trim());
      if (!question || !answer) throw new Error(t('eval_bad_line', i + 1));
      return { question, expected_answer: answer };
    });
    const configurations = modes.filter((b) => b.checked).map((b) => ({ label: b.value, mode: b.value }));
    await api('POST', `/v1/knowledge-bases/${kb.id}/evaluations`, { questions, configurations });
    toast(t('eval_started'));
    render();
  });
  if (runs.some((r) => r.status === 'running')) every(1500, () => render());
  const pct = (v) => `${(100 * v).toFixed(1)}%`;
  const rows = runs.flatMap((run) => (run.status === 'completed' ? run.results.configurations : [null]).map((c) => h('tr', { 'data-run': run.id, 'data-status': run.status },
    h('td', {}, run.name, h('div', { class: 'muted' }, fmtTime(run.created_at))), h('td', {}, badge(run.status === 'completed' ? 'completed' : run.status, run.status)),
    h('td', {}, c ? c.label : (run.error_message || '—')), h('td', {}, c ? pct(c.hit_at_k) : ''), h('td', {}, c ? c.mrr.toFixed(3) : ''),
    h('td', {}, c ? c.ndcg_at_10.toFixed(3) : ''), h('td', {}, c ? `${c.latency_ms_p50.toFixed(1)} ms` : ''))));
  const table = runs.length
    ? h('div', { class: 'table-wrap' }, h('table', { id: 'eval-table' }, h('thead', {}, h('tr', {},
      [t('eval_name'), t('eval_status'), t('eval_config'), `hit@${(runs.find((r) => r.results && r.results.k) || { results: { k: 10 } }).results.k}`, 'MRR', 'nDCG@10', 'p50']
        .map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, rows)))
    : h('p', { class: 'muted', id: 'eval-empty' }, t('eval_empty'));
  const latest = runs.find((r) => r.status === 'completed');
  add(root, form, h('h2', {}, t('eval_runs')), table, latest ? evaluationChart(latest) : null);
}

/** Grouped bars, 0 to 1: for each configuration of a run, its hit@k, MRR and nDCG@10. */
function evaluationChart(run) {
  const configs = run.results.configurations;
  const metrics = [['hit_at_k', `hit@${run.results.k}`, '#2f6db3'], ['mrr', 'MRR', '#4d9a6a'], ['ndcg_at_10', 'nDCG@10', '#c07a2c']];
  const W = 720; const H = 220; const left = 40; const right = 10; const bottom = 28; const top = 10;
  const label = `${t('eval_chart')}: ${configs.map((c) => `${c.label} nDCG@10 ${c.ndcg_at_10.toFixed(3)}`).join(', ')}`;
  const { svg, el } = svgChart('eval-chart', label, { W, H, left, right, bottom, top }, '1');
  const group = (W - left - right) / Math.max(configs.length, 1);
  configs.forEach((c, i) => {
    metrics.forEach(([key, name, color], j) => {
      const height = (H - bottom - top) * Math.max(0, Math.min(1, c[key]));
      const bar = el('rect', { class: 'bar', x: left + i * group + 8 + j * ((group - 16) / 3), y: H - bottom - height, width: Math.max((group - 16) / 3 - 2, 1), height, fill: color, 'data-metric': key });
      svgTooltip(bar, `${c.label} ${name}: ${c[key].toFixed(3)}`);
    });
    el('text', { x: left + i * group + group / 2, y: H - 8, 'text-anchor': 'middle' }, c.label);
  });
  return h('section', { class: 'card' }, h('h2', {}, `${t('eval_chart')} · ${run.name}`), svg,
    h('p', { class: 'muted eval-legend' }, metrics.map(([key, name]) => h('span', { class: `metric-${key}` }, `■ ${name} `))));
}

// ---------------------------------------------------------------------------------- documents

async function pageDocument(root, id, query) {
  const doc = await api('GET', `/v1/documents/${id}`);
  const { data: chunks } = await api('GET', `/v1/documents/${id}/chunks`);
  const target = query.get('chunk');
  const deleted = Boolean(doc.soft_deleted_at);
  add(root, h('p', {}, h('a', { href: `#/kbs/${doc.knowledge_base_id}` }, `← ${t('back')}`)),
    h('h1', {}, doc.title || doc.filename),
    h('div', { class: 'card stats' },
      h('div', { class: 'stat' }, h('b', {}, badge(doc.status)), t('status')),
      h('div', { class: 'stat' }, h('b', {}, doc.chunk_count), t('chunks')),
      h('div', { class: 'stat' }, h('b', {}, doc.file_type), t('file_type')),
      h('div', { class: 'stat' }, h('b', {}, fmtBytes(doc.file_size)), t('size')),
      h('div', { class: 'stat' }, h('b', {}, fmtTime(doc.processed_at)), t('processed')),
      deleted ? h('div', { class: 'stat' }, h('b', {}, badge('deleted', t('deleted'))), fmtTime(doc.soft_deleted_at)) : null),
    doc.error_message ? h('p', { class: 'error', role: 'alert' }, `${doc.error_message} (${doc.error_code})`) : null,
    h('p', {}, h('a', { href: fileHref(id), download: doc.filename, id: 'doc-file' }, `${t('original_file')} (${doc.filename})`), ' ', h('button', { type: 'button', class: 'secondary', onclick: async () => {
      try { await api(deleted ? 'POST' : 'DELETE', `/v1/documents/${id}${deleted ? '/restore' : ''}`, deleted ? {} : undefined); render(); } catch (e) { fail(e); }
    } }, deleted ? t('restore') : t('delete'))));
  // Parents first, each followed by its children.
  const children = new Map();
  for (const c of chunks) if (c.parent_chunk_id) children.set(c.parent_chunk_id, [...(children.get(c.parent_chunk_id) || []), c]);
  // Each chunk can be edited (re-indexed and re-embedded), disabled or enabled, in place.
  const card = (c, isChild) => {
    const kids = children.get(c.id) || [];
    const label = kids.length ? t('parent_of', kids.length) : isChild ? t('child') : '';
    const body = h('pre', { class: 'chunk' }, c.content);
    const el = h('div', { class: `chunk-card${isChild ? ' child' : ''}${c.id === target ? ' target' : ''}${c.enabled === false ? ' disabled' : ''}`,
      id: `chunk-${c.id}`, tabindex: c.id === target ? -1 : null, 'data-chunk': c.id });
    const save = async (changes, message) => {
      try { await api('PATCH', `/v1/chunks/${c.id}`, changes); toast(t(message)); render(); } catch (e) { fail(e); }
    };
    const edit = () => {
      if (c.metadata && c.metadata.qa) {
        const form = qaEditForm(c, render, () => form.replaceWith(body));
        body.replaceWith(form);
        return;
      }
      const text = h('textarea', { class: 'chunk-text', rows: 6, 'aria-label': t('chunk_text') });
      text.value = c.content;
      const form = h('form', { class: 'chunk-edit' }, text,
        h('div', { class: 'row' }, h('button', { type: 'submit', class: 'chunk-save' }, t('chunk_save')),
          h('button', { type: 'button', class: 'secondary', onclick: () => form.replaceWith(body) }, t('chunk_cancel'))));
      onSubmit(form, () => save({ content: text.value }, 'chunk_saved'));
      body.replaceWith(form);
      text.focus();
    };
    const editable = !deleted && c.enabled !== undefined;
    const page = c.metadata && c.metadata.page !== undefined ? ` · ${pageLabel(c.metadata.page, c.metadata.page_end)}` : '';
    return add(el,
      h('span', { class: 'muted' }, `${t('chunk_n', c.chunk_index + 1)}${label ? ` · ${label}` : ''}${page}`),
      c.edited_at ? h('span', { class: 'muted chunk-edited' }, ` · ${t('chunk_edited')}`) : null,
      c.enabled === false ? h('span', { class: 'badge paused chunk-state' }, t('chunk_disabled')) : null,
      editable ? h('span', { class: 'chunk-actions' },
        h('button', { type: 'button', class: 'secondary chunk-edit-button', 'aria-label': `${t('chunk_edit')} ${t('chunk_n', c.chunk_index + 1)}`, onclick: edit }, t('chunk_edit')),
        h('button', { type: 'button', class: 'secondary chunk-toggle', 'aria-label': `${c.enabled === false ? t('chunk_enable') : t('chunk_disable')} ${t('chunk_n', c.chunk_index + 1)}`,
          onclick: () => save({ enabled: c.enabled === false }, 'chunk_saved') }, c.enabled === false ? t('chunk_enable') : t('chunk_disable'))) : null,
      body);
  };
  const section = h('section', { id: 'chunks', 'aria-label': t('chunks') }, h('h2', {}, `${t('chunks')} (${chunks.length})`));
  for (const c of chunks.filter((x) => !x.parent_chunk_id)) {
    add(section, card(c, false));
    for (const kid of children.get(c.id) || []) add(section, card(kid, true));
  }
  const cited = chunks.find((c) => c.id === target);
  if (cited && cited.metadata && Array.isArray(cited.metadata.regions)) add(root, regionView(doc, cited.metadata));
  add(root, section);
  if (!deleted && doc.status === 'completed') {
    const text = h('textarea', { id: 'chunk-new', rows: 4, required: true });
    const form = h('form', { class: 'card', id: 'chunk-add-form' }, field(t('chunk_add'), text),
      h('button', { type: 'submit' }, t('chunk_add')));
    onSubmit(form, async () => {
      await api('POST', `/v1/documents/${id}/chunks`, { content: text.value });
      toast(t('chunk_added'));
      render();
    });
    add(root, form);
  }
  if (doc.processing_log && doc.processing_log.length) {
    add(root, h('details', { class: 'card' }, h('summary', {}, t('processing_log')),
      h('ul', {}, doc.processing_log.map((e) => h('li', {}, `${fmtTime(e.at || e.timestamp)} · ${e.stage || ''} · ${e.message || ''}`)))));
  }
  if (target) {
    setTimeout(() => {
      const el = document.getElementById(`chunk-${target}`);
      if (el) { el.scrollIntoView({ block: 'center' }); el.focus(); }
    }, 0);
  }
}

// ---------------------------------------------------------------------------------- search

async function pageSearch(root, _, query) {
  const { data: kbs } = await api('GET', '/v1/knowledge-bases?limit=500');
  const preselected = query.get('kb');
  const q = h('input', { id: 'search-query', required: true, type: 'search' });
  const boxes = kbs.map((kb) => h('input', { type: 'checkbox', value: kb.id, checked: !preselected || preselected === kb.id, 'data-kb': kb.id }));
  const mode = h('select', { id: 'search-mode' }, ['hybrid', 'vector', 'fulltext'].map((m) => h('option', { value: m }, m)));
  const topK = h('input', { type: 'number', min: 1, max: 100, value: 10, id: 'search-topk' });
  const threshold = h('input', { type: 'number', min: 0, max: 1, step: 0.01, id: 'search-threshold' });
  const targetSel = h('select', {}, ['content', 'summary', 'both'].map((m) => h('option', { value: m }, t(`target_${m}`))));
  const results = h('section', { id: 'search-results', 'aria-live': 'polite' });
  const form = h('form', { class: 'card', id: 'search-form', role: 'search' },
    field(t('query'), q),
    h('fieldset', {}, h('legend', { class: 'legend' }, t('knowledge_bases')), kbs.map((kb, i) => h('label', { class: 'check' }, boxes[i], kb.name))),
    h('div', { class: 'row' }, field(t('mode'), mode), field(t('top_k'), topK), field(t('threshold'), threshold), field(t('target'), targetSel),
      h('div', { class: 'field' }, h('button', { type: 'submit' }, t('search_go')))));
  onSubmit(form, async () => {
    const ids = boxes.filter((b) => b.checked).map((b) => b.value);
    const body = { query: q.value, mode: mode.value, top_k: numberOrNull(topK.value), similarity_threshold: numberOrNull(threshold.value), search_target: targetSel.value };
    const started = performance.now();
    const res = ids.length === 1
      ? await api('POST', `/v1/knowledge-bases/${ids[0]}/search`, body)
      : await api('POST', '/v1/search', { ...body, knowledge_base_ids: ids.length ? ids : null });
    const took = Math.round(performance.now() - started);
    add(clear(results), h('p', { id: 'search-summary' }, t('results_count', res.results.length, took, Number(res.took_ms).toFixed(1)),
      res.embedding_model ? ` · ${res.embedding_model}` : ''),
      res.warning ? h('p', { class: 'notice' }, res.warning) : null,
      res.results.length ? null : h('p', { class: 'muted' }, t('no_results')),
      h('ol', { class: 'results' }, res.results.map((r) => h('li', { class: 'result', 'data-document': r.document_id },
        h('a', { href: `#/docs/${r.document_id}?chunk=${r.chunk_id}` }, r.title || r.filename),
        h('div', { class: 'meta' }, [t('score', r.score.toFixed(4)),
          r.vector_score != null ? t('vector_score', r.vector_score.toFixed(3)) : null,
          r.fulltext_score != null ? t('fulltext_score', r.fulltext_score.toFixed(3)) : null].filter(Boolean).join(' · '), ` · ${r.filename}`),
        h('p', { class: 'highlight' }, highlighted(r.highlight))))));
  });
  add(root, h('h1', {}, t('search_title')), form, results);
}

// ---------------------------------------------------------------------------------- agents

async function pageAgents(root) {
  const { data } = await api('GET', '/v1/agents');
  add(root, h('h1', {}, t('agents_title')), h('p', {}, h('a', { href: '#/agents/new', id: 'agent-new' }, `+ ${t('agent_new')}`)));
  if (!data.length) { add(root, h('p', { class: 'muted' }, t('agents_empty'))); return; }
  add(root, h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, [t('name'), t('model_provider'), t('knowledge_bases'), t('status')].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, data.map((a) => h('tr', {},
      h('td', {}, h('a', { href: `#/agents/${a.id}` }, a.name), a.description ? h('div', { class: 'muted' }, a.description) : null),
      h('td', {}, `${a.model_provider}${a.model_name ? ` / ${a.model_name}` : ''}`),
      h('td', {}, a.knowledge_base_ids.length), h('td', {}, badge(a.is_active ? 'active' : 'paused', a.is_active ? t('active') : '—'))))))));
}

async function pageAgent(root, id) {
  const [agent, kbs, sources, types] = await Promise.all([
    id ? api('GET', `/v1/agents/${id}`) : null,
    api('GET', '/v1/knowledge-bases?limit=500').then((r) => r.data),
    api('GET', '/v1/data-sources').then((r) => r.data).catch(() => []),
    api('GET', '/v1/file-types').then((r) => r.data).catch(() => []),
  ]);
  const a = agent || { agent_type: 'general', model_provider: 'extractive', conversation_mode: 'multi_turn', max_documents: 5, is_active: true, knowledge_base_ids: [], data_source_ids: [], file_type_ids: [], domain_keywords: [], expertise_areas: [], model_parameters: {} };
  const input = (value, attrs) => h('input', { value: value ?? '', ...attrs });
  const number = (value, attrs) => h('input', { type: 'number', value: value ?? '', ...attrs });
  const f = {
    name: input(a.name, { required: true, id: 'agent-name' }),
    description: input(a.description),
    agent_type: input(a.agent_type),
    model_provider: h('select', { id: 'agent-provider' }, ['extractive', 'openai', 'anthropic', 'cohere', 'deepseek', 'qwen', 'vllm', 'ollama', 'llamacpp'].map((p) => h('option', { value: p, selected: a.model_provider === p }, p))),
    model_name: input(a.model_name, { id: 'agent-model' }),
    model_parameters: h('textarea', { class: 'code', rows: 3, value: JSON.stringify(a.model_parameters || {}, null, 2) }),
    conversation_mode: h('select', {}, ['multi_turn', 'single_turn'].map((m) => h('option', { value: m, selected: a.conversation_mode === m }, t(m)))),
    context_window: number(a.context_window, { min: 1 }),
    memory_retention_days: number(a.memory_retention_days, { min: 1 }),
    system_prompt: h('textarea', { rows: 4, value: a.system_prompt || '', id: 'agent-system' }),
    user_prompt_template: h('textarea', { rows: 3, value: a.user_prompt_template || '' }),
    max_documents: number(a.max_documents, { min: 1, max: 50 }),
    similarity_threshold: number(a.similarity_threshold, { min: 0, max: 1, step: 0.01 }),
    rate_limit_per_hour: number(a.rate_limit_per_hour, { min: 1 }),
    rate_limit_per_day: number(a.rate_limit_per_day, { min: 1 }),
    domain_keywords: input((a.domain_keywords || []).join(', ')),
    expertise_areas: input((a.expertise_areas || []).join(', ')),
  };
  const active = h('input', { type: 'checkbox', checked: a.is_active });
  const picks = (items, chosen, label, key) => h('fieldset', {}, h('legend', { class: 'legend' }, label),
    items.length ? items.map((it) => checkbox(it.name, { value: String(it.id), checked: chosen.map(String).includes(String(it.id)), 'data-pick': key })) : h('span', { class: 'muted' }, t('none')));
  const form = h('form', { class: 'card', id: 'agent-form' }, h('h2', {}, t('agent_edit')),
    field(t('name'), f.name), field(t('description'), f.description),
    h('div', { class: 'row' }, field(t('agent_type'), f.agent_type), field(t('model_provider'), f.model_provider), field(t('model_name'), f.model_name)),
    field(t('model_parameters'), f.model_parameters),
    h('div', { class: 'row' }, field(t('conversation_mode'), f.conversation_mode), field(t('context_window'), f.context_window), field(t('memory_days'), f.memory_retention_days)),
    field(t('system_prompt'), f.system_prompt), field(t('user_prompt_template'), f.user_prompt_template),
    h('div', { class: 'row' }, field(t('max_documents'), f.max_documents), field(t('threshold'), f.similarity_threshold),
      field(t('rate_hour'), f.rate_limit_per_hour), field(t('rate_day'), f.rate_limit_per_day)),
    field(t('domain_keywords'), f.domain_keywords), field(t('expertise'), f.expertise_areas),
    picks(kbs, a.knowledge_base_ids, t('knowledge_bases'), 'kb'), picks(sources, a.data_source_ids, t('data_sources'), 'source'),
    picks(types, a.file_type_ids, t('file_types'), 'type'),
    h('p', {}, h('label', { class: 'check' }, active, t('active'))),
    h('button', { type: 'submit', id: 'agent-save' }, t('save')));
  const picked = (key, asNumber) => Array.from(form.querySelectorAll(`input[data-pick=${key}]:checked`)).map((b) => (asNumber ? Number(b.value) : b.value));
  onSubmit(form, async () => {
    const body = {
      name: f.name.value, description: f.description.value || null, agent_type: f.agent_type.value || 'general',
      model_provider: f.model_provider.value, model_name: f.model_name.value || null,
      model_parameters: parseJson(t('model_parameters'), f.model_parameters.value) || {},
      conversation_mode: f.conversation_mode.value, context_window: numberOrNull(f.context_window.value),
      memory_retention_days: numberOrNull(f.memory_retention_days.value), system_prompt: f.system_prompt.value || null,
      user_prompt_template: f.user_prompt_template.value || null, max_documents: numberOrNull(f.max_documents.value) ?? 5,
      similarity_threshold: numberOrNull(f.similarity_threshold.value), rate_limit_per_hour: numberOrNull(f.rate_limit_per_hour.value),
      rate_limit_per_day: numberOrNull(f.rate_limit_per_day.value), domain_keywords: listOf(f.domain_keywords.value),
      expertise_areas: listOf(f.expertise_areas.value), is_active: active.checked,
      knowledge_base_ids: picked('kb'), data_source_ids: picked('source'), file_type_ids: picked('type', true),
    };
    const saved = id ? await api('PATCH', `/v1/agents/${id}`, body) : await api('POST', '/v1/agents', body);
    toast(t('saved'));
    if (!id) go(`#/agents/${saved.id}`);
  });
  const chat = id ? await chatPanel(a) : h('div', { class: 'card' }, h('p', { class: 'muted' }, t('save_agent_first')));
  add(root, h('h1', {}, agent ? agent.name : t('agent_new')), h('div', { class: 'grid2' }, chat, form));
  if (agent) {
    add(root, h('p', {}, h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!window.confirm(t('confirm_delete', agent.name))) return;
      try { await api('DELETE', `/v1/agents/${id}`); go('#/agents'); } catch (e) { fail(e); }
    } }, t('delete'))));
  }
}

async function chatPanel(agent) {
  const { data: conversations } = await api('GET', `/v1/conversations?agent_id=${agent.id}`);
  let conversationId = null;
  const picker = h('select', { id: 'conversation-picker' }, h('option', { value: '' }, t('new_conversation')),
    conversations.map((c) => h('option', { value: c.id }, `${c.title || c.id.slice(0, 8)} · ${fmtTime(c.updated_at)}`)));
  const messages = h('div', { class: 'messages', id: 'messages', 'aria-live': 'polite' });
  const text = h('textarea', { id: 'chat-input', rows: 3, required: true });
  const form = h('form', { class: 'chat', id: 'chat-form' }, field(t('message'), text), h('button', { type: 'submit', id: 'chat-send' }, t('send')));
  picker.addEventListener('change', async () => {
    conversationId = picker.value || null;
    clear(messages);
    if (!conversationId) return;
    try {
      const { data } = await api('GET', `/v1/conversations/${conversationId}/messages`);
      for (const m of data) add(messages, messageBubble(m.role, m.content, m.citations));
    } catch (e) { fail(e); }
  });
  text.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) form.requestSubmit(); });
  onSubmit(form, async () => {
    const message = text.value.trim();
    if (!message) return;
    text.value = '';
    add(messages, messageBubble('user', message, []));
    const bubble = messageBubble('assistant', '', []);
    bubble.classList.add('streaming');
    add(bubble, h('span', { class: 'muted thinking' }, t('thinking')));
    add(messages, bubble);
    const controller = new AbortController();
    onLeave(() => controller.abort());
    let answer;
    try {
      answer = await streamChat(agent.id, { message, conversation_id: conversationId, stream: true }, controller.signal, (piece) => {
        const thinking = bubble.querySelector('.thinking');
        if (thinking) thinking.remove();
        bubble.querySelector('.content').append(piece);
        messages.scrollTop = messages.scrollHeight;
      });
    } catch (e) {
      bubble.classList.remove('streaming');
      add(clear(bubble), h('p', { class: 'error', role: 'alert' }, errorText(e)));
      throw e;
    }
    bubble.replaceWith(messageBubble('assistant', answer.message.content, answer.message.citations, answer.extractive));
    if (answer.conversation_id && answer.conversation_id !== conversationId) {
      conversationId = answer.conversation_id;
      add(picker, h('option', { value: conversationId }, `${message.slice(0, 40)} · ${fmtTime(new Date().toISOString())}`));
      picker.value = conversationId;
    }
    messages.scrollTop = messages.scrollHeight;
  });
  return h('section', { class: 'card', 'aria-label': t('chat') }, h('h2', {}, t('chat')), field(t('conversation'), picker), messages, form);
}

/** POSTs a chat with stream: true and reads the server-sent events: token, done, error. */
async function streamChat(agentId, body, signal, onToken) {
  const res = await fetch(`/v1/agents/${agentId}/chat`, {
    method: 'POST', credentials: 'same-origin', signal,
    headers: { ...authHeaders(), 'Content-Type': 'application/json', Accept: 'text/event-stream' }, body: JSON.stringify(body),
  });
  if (!res.ok) {
    let data = null;
    try { data = await res.json(); } catch { data = null; }
    throw apiError(res.status, data, 'chat');
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (!data.length) continue;
      const payload = JSON.parse(data.join('\n'));
      if (event === 'token') onToken(payload.content);
      else if (event === 'done') return payload;
      else if (event === 'error') throw apiError(500, payload, 'chat');
    }
    if (done) throw new Error('the answer stream ended early');
  }
}

/** A chat message; `[n]` markers in an answer link to their citation's chunk. */
function messageBubble(role, content, citations, extractive) {
  const byIndex = new Map((citations || []).map((c) => [Number(c.index), c]));
  const body = h('div', { class: 'content' });
  for (const part of String(content).split(/(\[\d+\])/)) {
    const n = part.match(/^\[(\d+)\]$/);
    const c = n && byIndex.get(Number(n[1]));
    body.append(c ? h('a', { href: citationHref(c), class: 'cite' }, part) : document.createTextNode(part));
  }
  const bubble = h('div', { class: `msg ${role}`, 'data-role': role }, body);
  if (citations && citations.length) {
    add(bubble, h('div', { class: 'muted' }, t('sources_cited')), h('ol', { class: 'citations' }, citations.map((c) => h('li', { value: c.index },
      h('a', { href: citationHref(c) }, c.filename), ' ',
      c.location && c.location.page !== undefined ? h('span', { class: 'muted cite-page' }, `${pageLabel(c.location.page, c.location.page_end)} `) : null,
      h('a', { href: fileHref(c.document_id), download: c.filename, class: 'cite-file', 'aria-label': t('original_of', c.filename) }, '⤓'),
      c.snippet ? ` — ${c.snippet}` : ''))));
  }
  if (extractive) add(bubble, h('p', { class: 'muted' }, t('extractive_note')));
  return bubble;
}

/**
 * Where a chunk's recognised text stands in its file: each page it touches (an image is its own
 * page; a PDF page is rendered by the server) with the chunk's boxes drawn over it. A box comes
 * with its page's size in the same units, so it scales onto the page as shown.
 */
function regionView(doc, meta) {
  const card = h('section', { class: 'card', id: 'cited-region', 'aria-label': t('cited_region') }, h('h2', {}, t('cited_region')));
  const pages = [...new Set(meta.regions.map((r) => r.page))];
  for (const page of pages) {
    const src = doc.file_type === 'image' ? fileHref(doc.id) : inWorkspace(`/v1/documents/${encodeURIComponent(doc.id)}/pages/${page}`);
    const frame = h('div', { class: 'page-view', 'data-page': page });
    const img = h('img', { src, alt: `${doc.filename} · ${t('page_n', page)}` });
    const place = () => {
      frame.querySelectorAll('.region').forEach((r) => r.remove());
      for (const r of meta.regions.filter((x) => x.page === page)) {
        const units = (r.page_size && r.page_size[0]) || img.naturalWidth || 1;
        const scale = img.clientWidth / units;
        const [x0, y0, x1, y1] = r.bbox;
        // Through the CSSOM: the console's CSP (style-src 'self') refuses style attributes.
        const box = h('div', { class: 'region', 'data-page': page });
        Object.assign(box.style, { left: `${x0 * scale}px`, top: `${y0 * scale}px`, width: `${(x1 - x0) * scale}px`, height: `${(y1 - y0) * scale}px` });
        add(frame, box);
      }
    };
    img.addEventListener('load', place);
    add(frame, img);
    add(card, h('p', { class: 'muted' }, pageLabel(page), doc.file_type === 'pdf' ? [' · ',
      h('a', { href: `${fileHref(doc.id)}#page=${page}`, target: '_blank', rel: 'noopener', class: 'region-link' }, t('open_page', page))] : null), frame);
  }
  return card;
}

/** "p. 2", or "pp. 2–3" for a chunk that runs onto another page. */
function pageLabel(first, last) {
  return last !== undefined && last !== first ? t('pages_n', first, last) : t('page_n', first);
}

/** The uploaded file itself, as it was uploaded (the session cookie authorises the download). */
function fileHref(documentId) {
  return inWorkspace(`/v1/documents/${encodeURIComponent(documentId)}/file`);
}

function citationHref(c) {
  return `#/docs/${c.document_id}${c.chunk_id ? `?chunk=${c.chunk_id}` : ''}`;
}

// ---------------------------------------------------------------------------------- API keys

async function pageKeys(root) {
  const { data: kbs } = await api('GET', '/v1/knowledge-bases?limit=500');
  const kbName = new Map(kbs.map((k) => [k.id, k.name]));
  const name = h('input', { required: true, id: 'key-name' });
  const desc = h('input', {});
  const scopes = ['search', 'read', 'upload', 'delete'].map((s) => checkbox(s, { value: s, checked: s === 'search' || s === 'read', 'data-scope': s }));
  const kb = h('select', { id: 'key-kb' }, h('option', { value: '' }, t('any')), kbs.map((k) => h('option', { value: k.id }, k.name)));
  const days = h('input', { type: 'number', min: 1, max: 36500, id: 'key-days' });
  const rate = h('input', { type: 'number', min: 1 });
  const daily = h('input', { type: 'number', min: 1 });
  const monthly = h('input', { type: 'number', min: 1 });
  const ips = h('input', { placeholder: '127.0.0.1, 10.0.0.0/8' });
  const origins = h('input', { placeholder: 'https://example.com' });
  const shown = h('div', { id: 'key-shown' });
  const form = h('form', { class: 'card', id: 'key-form' }, h('h2', {}, t('key_new')),
    h('div', { class: 'row' }, field(t('name'), name), field(t('description'), desc)),
    h('fieldset', {}, h('legend', { class: 'legend' }, t('scopes')), scopes),
    h('div', { class: 'row' }, field(t('knowledge_base'), kb), field(t('expires_days'), days), field(t('rate_limit'), rate),
      field(t('daily_quota'), daily), field(t('monthly_quota'), monthly)),
    h('div', { class: 'row' }, field(t('allowed_ips'), ips), field(t('allowed_origins'), origins)),
    h('button', { type: 'submit' }, t('create')));
  onSubmit(form, async () => {
    const security = {};
    if (listOf(ips.value).length) security.allowed_ips = listOf(ips.value);
    if (listOf(origins.value).length) security.allowed_origins = listOf(origins.value);
    const created = await api('POST', '/v1/api-keys', {
      name: name.value, description: desc.value || null,
      scopes: Array.from(form.querySelectorAll('input[data-scope]:checked')).map((b) => b.value),
      knowledge_base_id: kb.value || null, expires_in_days: numberOrNull(days.value), rate_limit: numberOrNull(rate.value),
      daily_quota: numberOrNull(daily.value), monthly_quota: numberOrNull(monthly.value),
      security: Object.keys(security).length ? security : null,
    });
    // Rendered after the list redraws, so the key stays on screen.
    await drawList();
    const value = h('input', { readonly: true, value: created.key, id: 'new-key', 'aria-label': t('key'), size: 60 });
    const copy = h('button', { type: 'button', class: 'secondary', onclick: async () => {
      value.select();
      try { await navigator.clipboard.writeText(created.key); } catch { document.execCommand('copy'); }
      copy.textContent = t('copied');
    } }, t('copy'));
    add(clear(shown), h('div', { class: 'notice', role: 'alert' }, h('p', {}, h('strong', {}, t('key_once'))), h('div', { class: 'secret' }, value, copy)));
    value.focus();
    value.select();
  });
  const list = h('div', { id: 'key-list' });
  const drawList = async () => {
    const { data } = await api('GET', '/v1/api-keys');
    clear(list);
    if (!data.length) { add(list, h('p', { class: 'muted' }, t('keys_empty'))); return; }
    const now = Date.now();
    add(list, h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, [t('name'), t('key'), t('scopes'), t('knowledge_base'), t('usage_today'), t('usage_month'), t('expires'), t('last_used'), t('status'), ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, data.map((k) => {
        const state = k.revoked_at || !k.is_active ? 'revoked' : k.expires_at && Date.parse(k.expires_at) <= now ? 'expired' : 'active';
        return h('tr', { 'data-key': k.id, 'data-state': state },
          h('td', {}, k.name), h('td', {}, h('code', {}, `${k.key_prefix}…${k.key_suffix}`)), h('td', {}, k.scopes.join(', ')),
          h('td', {}, k.knowledge_base_id ? kbName.get(k.knowledge_base_id) || k.knowledge_base_id : t('any')),
          h('td', {}, k.usage_count_today), h('td', {}, k.usage_count_month), h('td', {}, fmtTime(k.expires_at)),
          h('td', {}, k.last_used_at ? fmtTime(k.last_used_at) : t('never')), h('td', {}, badge(state, t(state))),
          h('td', {}, state === 'revoked' ? null : h('button', { type: 'button', class: 'danger', 'aria-label': `${t('revoke')} ${k.name}`, onclick: async () => {
            if (!window.confirm(t('confirm_revoke', k.name))) return;
            try { await api('DELETE', `/v1/api-keys/${k.id}`); await drawList(); } catch (e) { fail(e); }
          } }, t('revoke'))));
      })))));
  };
  add(root, h('h1', {}, t('keys_title')), shown, form, list);
  await drawList();
}

// ---------------------------------------------------------------------------------- usage

async function pageUsage(root, _, query) {
  const days = Number(query.get('days')) || 30;
  const from = new Date(Date.now() - (days - 1) * 86400000);
  from.setUTCHours(0, 0, 0, 0);
  const iso = encodeURIComponent(from.toISOString());
  const [apiUsage, agentUsage] = await Promise.all([api('GET', `/v1/usage/api?from=${iso}&limit=1`), api('GET', `/v1/usage/agents?from=${iso}`)]);
  const dayList = [];
  for (let d = new Date(from); dayList.length < days; d = new Date(d.getTime() + 86400000)) dayList.push(d.toISOString().slice(0, 10));
  const calls = new Map(apiUsage.daily.map((d) => [d.day, d.requests]));
  const tokens = new Map();
  const cost = new Map();
  for (const d of agentUsage.days) {
    tokens.set(d.day, (tokens.get(d.day) || 0) + d.tokens);
    cost.set(d.day, (cost.get(d.day) || 0) + Number(d.cost));
  }
  const range = h('select', { id: 'usage-range', onchange: (e) => go(`#/usage?days=${e.target.value}`) },
    [7, 30, 90].map((n) => h('option', { value: n, selected: n === days }, t('last_days', n))));
  const series = (map) => dayList.map((d) => [d, map.get(d) || 0]);
  add(root, h('h1', {}, t('usage_title')), field(t('range'), range),
    chartCard('chart-api', t('api_calls'), series(calls), (v) => String(v)),
    chartCard('chart-tokens', t('agent_tokens'), series(tokens), (v) => String(v)),
    chartCard('chart-cost', t('agent_cost'), series(cost), (v) => `$${v.toFixed(4)}`));
}

/** A bar chart as inline SVG, with its numbers also as a table for screen readers. */
function chartCard(id, title, points, format) {
  const total = points.reduce((s, [, v]) => s + v, 0);
  const max = Math.max(...points.map(([, v]) => v), 0);
  const W = 720; const H = 200; const left = 48; const right = 24; const bottom = 24; const top = 10;
  const { svg, el } = svgChart(id, `${title}. ${t('total', format(total))}`, { W, H, left, right, bottom, top }, format(max));
  const width = (W - left - right) / Math.max(points.length, 1);
  points.forEach(([day, v], i) => {
    const height = max ? ((H - bottom - top) * v) / max : 0;
    const bar = el('rect', { class: 'bar', x: left + i * width + 1, y: H - bottom - height, width: Math.max(width - 2, 1), height, 'data-day': day, 'data-value': v });
    svgTooltip(bar, `${day}: ${format(v)}`);
    if (i === 0 || i === points.length - 1 || (points.length <= 10)) el('text', { x: left + i * width + width / 2, y: H - 6, 'text-anchor': 'middle' }, day.slice(5));
  });
  return h('section', { class: 'card' }, h('h2', {}, title), h('p', {}, t('total', format(total))),
    max ? svg : h('p', { class: 'muted' }, t('no_data')),
    h('details', {}, h('summary', {}, t('chart_data')), h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, t('day')), h('th', {}, t('value')))),
      h('tbody', {}, points.filter(([, v]) => v).map(([d, v]) => h('tr', {}, h('td', {}, d), h('td', {}, format(v))))))));
}

// ---------------------------------------------------------------------------------- data sources

async function pageSources(root) {
  const [{ data: sources }, { data: kbs }] = await Promise.all([api('GET', '/v1/data-sources'), api('GET', '/v1/knowledge-bases?limit=500')]);
  const kbName = new Map(kbs.map((k) => [k.id, k.name]));
  add(root, h('h1', {}, t('sources_title')));
  if (!sources.length) add(root, h('p', { class: 'muted' }, t('sources_empty')));
  for (const s of sources) {
    const history = h('div', { class: 'sync-history' });
    const lastSync = h('span', {}, fmtTime(s.last_sync));
    let timer = null;
    // Shows the sync history, and keeps it live while a sync runs.
    const showHistory = async () => {
      const { data } = await api('GET', `/v1/data-sources/${s.id}/syncs`);
      const running = data.some((r) => r.status === 'running');
      const finished = data.map((r) => r.finished_at).filter(Boolean).sort().pop();
      if (finished) add(clear(lastSync), fmtTime(finished));
      if (running && !timer) {
        timer = setInterval(() => showHistory().catch(() => {}), 1500);
        onLeave(() => clearInterval(timer));
      } else if (!running && timer) {
        clearInterval(timer);
        timer = null;
      }
      add(clear(history), h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, [t('created'), t('status'), t('added'), t('updated_n'), t('removed'), t('failed')].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, data.map((r) => h('tr', { 'data-status': r.status }, h('td', {}, fmtTime(r.started_at)), h('td', {}, badge(r.status)), h('td', {}, r.added), h('td', {}, r.updated), h('td', {}, r.removed),
          h('td', {}, r.failed, (r.errors || []).length ? h('div', { class: 'error' }, r.errors.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join('; ')) : null)))))));
    };
    add(root, h('section', { class: 'card', 'data-source': s.id },
      h('h2', {}, s.name, ' ', badge(s.status)),
      h('p', { class: 'muted' }, `${s.source_type} · ${(s.config && s.config.path) || ''} → ${kbName.get(s.knowledge_base_id) || s.knowledge_base_id}`),
      h('p', {}, `${t('last_sync')}: `, lastSync, s.auto_sync ? ` · ${t('auto_sync')} (${s.sync_frequency || '—'} min)` : ''),
      s.last_error ? h('p', { class: 'error' }, s.last_error) : null,
      h('p', {}, h('button', { type: 'button', 'data-action': 'sync', onclick: async () => {
        try { await api('POST', `/v1/data-sources/${s.id}/sync`, {}); toast(t('sync_started')); await showHistory(); } catch (e) { fail(e); }
      } }, t('sync_now')), ' ', h('button', { type: 'button', class: 'secondary', 'data-action': 'history', onclick: () => showHistory().catch(fail) }, t('history'))),
      history));
  }
  const name = h('input', { required: true, id: 'source-name' });
  const kb = h('select', { required: true }, kbs.map((k) => h('option', { value: k.id }, k.name)));
  const path = h('input', { required: true, placeholder: '/srv/docs', id: 'source-path' });
  const include = h('input', { placeholder: '**/*.md, **/*.pdf' });
  const exclude = h('input', {});
  const auto = h('input', { type: 'checkbox' });
  const freq = h('input', { type: 'number', min: 1, value: 60 });
  const form = h('form', { class: 'card', id: 'source-form' }, h('h2', {}, t('source_new')),
    h('div', { class: 'row' }, field(t('name'), name), field(t('knowledge_base'), kb)),
    field(t('folder'), path), h('div', { class: 'row' }, field(t('include'), include), field(t('exclude'), exclude)),
    h('div', { class: 'row' }, h('label', { class: 'check' }, auto, t('auto_sync')), field(t('frequency'), freq)),
    h('button', { type: 'submit' }, t('create')));
  onSubmit(form, async () => {
    const config = { path: path.value };
    if (listOf(include.value).length) config.include = listOf(include.value);
    if (listOf(exclude.value).length) config.exclude = listOf(exclude.value);
    await api('POST', '/v1/data-sources', { name: name.value, knowledge_base_id: kb.value, source_type: 'local_folder', config, auto_sync: auto.checked, sync_frequency: numberOrNull(freq.value) });
    render();
  });
  if (kbs.length) add(root, form);
}

// ---------------------------------------------------------------------------------- administration

/** Administrators: this server's readiness and limits, the nodes, users, invitations, file types. */
async function pageAdmin(root) {
  const [server, nodes, users, invitations, types] = await Promise.all([
    api('GET', '/v1/admin/server'), api('GET', '/v1/admin/nodes'), api('GET', '/v1/admin/users?limit=200'),
    api('GET', '/v1/admin/invitations'), api('GET', '/v1/file-types'),
  ]);
  const act = async (fn) => { try { await fn(); render(); } catch (e) { fail(e); } };
  const facts = (pairs) => h('dl', { class: 'facts' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  const limits = server.limits;
  add(root, h('h1', {}, t('admin_title')),
    h('section', { class: 'card', id: 'admin-server', 'aria-label': t('admin_server') }, h('h2', {}, t('admin_server')),
      h('p', {}, badge(server.ready ? 'ok' : 'error', server.ready ? t('admin_ready') : t('admin_not_ready')),
        server.not_ready ? ` ${server.not_ready.message} (${server.not_ready.code})` : ''),
      facts([[t('admin_version'), server.version], [t('admin_node'), server.node], [t('admin_database'), server.database],
        [t('admin_blobs'), server.blob_store], [t('admin_queue'), server.queued_jobs],
        [t('admin_free'), server.free_disk_bytes == null ? '—' : fmtBytes(server.free_disk_bytes)]]),
      h('h3', {}, t('admin_limits')),
      facts(Object.entries({ ...limits, budgets: undefined, ...limits.budgets })
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, Array.isArray(v) ? (v.join(', ') || '—') : String(v ?? '—')]))),
    h('section', { class: 'card', id: 'admin-nodes' }, h('h2', {}, t('admin_nodes')),
      h('ul', {}, nodes.data.map((n) => h('li', {}, `${n.id} · ${n.version} · ${n.address} · ${t('admin_heartbeat')} ${fmtTime(n.heartbeat_at)}`)))));

  add(root, h('section', { class: 'card', id: 'admin-users' }, h('h2', {}, t('admin_users')),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, [t('name'), t('admin_email'), t('admin_role'), t('status'), t('created'), ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, users.data.map((u) => h('tr', { 'data-user': u.username },
        h('td', {}, u.username), h('td', {}, u.email), h('td', {}, u.is_superuser ? t('admin_admin') : t('admin_member')),
        h('td', {}, u.is_active ? badge('active') : badge('paused', t('admin_inactive'))), h('td', {}, fmtTime(u.created_at)),
        h('td', {}, u.id === session.user.id ? null : h('button', { type: 'button', class: 'secondary user-toggle',
          'aria-label': `${u.is_active ? t('admin_deactivate') : t('admin_reactivate')} ${u.username}`,
          onclick: () => act(() => api('PATCH', `/v1/admin/users/${u.id}`, { is_active: !u.is_active })) },
        u.is_active ? t('admin_deactivate') : t('admin_reactivate'))))))))));

  const inviteEmail = h('input', { type: 'email', id: 'invite-email' });
  const inviteForm = h('form', { class: 'row', id: 'invite-form' }, field(t('admin_invite_email'), inviteEmail),
    h('div', { class: 'field' }, h('button', { type: 'submit' }, t('admin_invite'))));
  const created = h('p', { id: 'invite-token', role: 'status' });
  onSubmit(inviteForm, async () => {
    const inv = await api('POST', '/v1/admin/invitations', inviteEmail.value ? { email: inviteEmail.value } : {});
    created.textContent = t('admin_invitation_token', inv.token);
  });
  add(root, h('section', { class: 'card', id: 'admin-invitations' }, h('h2', {}, t('admin_invitations')), inviteForm, created,
    h('ul', {}, invitations.data.map((i) => h('li', {}, `${i.email || '—'} · ${t('admin_expires')} ${fmtTime(i.expires_at)} `,
      h('button', { type: 'button', class: 'secondary', 'aria-label': `${t('admin_revoke')} ${i.email || i.id}`,
        onclick: () => act(() => api('DELETE', `/v1/admin/invitations/${i.id}`)) }, t('admin_revoke')))))));

  const typeRow = (ft) => {
    const exts = h('input', { value: (ft.extensions || []).join(', '), 'aria-label': `${t('admin_extensions')} ${ft.name}`, class: 'type-extensions' });
    const active = h('input', { type: 'checkbox', checked: ft.is_active, 'aria-label': `${t('admin_active')} ${ft.name}`, class: 'type-active' });
    return h('tr', { 'data-type': ft.name }, h('td', {}, ft.name), h('td', {}, ft.category), h('td', {}, exts), h('td', {}, active),
      h('td', {}, h('button', { type: 'button', class: 'secondary type-save', 'aria-label': `${t('admin_save')} ${ft.name}`,
        onclick: () => act(() => api('PATCH', `/v1/file-types/${ft.id}`, { extensions: listOf(exts.value), is_active: active.checked })) }, t('admin_save'))));
  };
  add(root, h('section', { class: 'card', id: 'admin-file-types' }, h('h2', {}, t('admin_file_types')),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, [t('name'), t('admin_category'), t('admin_extensions'), t('admin_active'), ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, types.data.map(typeRow))))));
}

/** The audit log: the caller's entries, or for administrators everyone's (or one user's),
 *  filtered by action and date, newest first, a page at a time. */
async function pageAudit(root, _, query) {
  const admin = Boolean(session.user && session.user.is_superuser);
  const everyone = admin && query.get('all') === '1';
  const areas = ['', 'auth.', 'api_key.', 'config.', 'knowledge_base.', 'document.', 'agent.', 'data_source.', 'member.', 'workspace.', 'admin.'];
  const action = h('select', { id: 'audit-action' }, areas.map((a) => h('option', { value: a, selected: (query.get('action') || '') === a }, a || t('audit_all'))));
  const since = h('input', { type: 'date', id: 'audit-since', value: query.get('since') || '' });
  const user = h('input', { id: 'audit-user', value: query.get('user_id') || '', placeholder: 'uuid' });
  const all = h('input', { type: 'checkbox', id: 'audit-all', checked: everyone });
  const form = h('form', { class: 'card row', id: 'audit-filters' }, field(t('audit_action'), action), field(t('audit_since'), since),
    admin ? h('p', {}, h('label', { class: 'check', for: all.id }, all, t('audit_everyone'))) : null,
    admin ? field(t('audit_user'), user) : null, h('button', { type: 'submit' }, t('audit_filter')));
  onSubmit(form, async () => {
    const next = new URLSearchParams();
    if (action.value) next.set('action', action.value);
    if (since.value) next.set('since', since.value);
    if (admin && all.checked) next.set('all', '1');
    if (admin && all.checked && user.value.trim()) next.set('user_id', user.value.trim());
    go(`#/audit?${next}`);
  });
  const body = h('tbody', {});
  const more = h('button', { type: 'button', class: 'secondary', id: 'audit-more', hidden: true }, t('audit_older'));
  let before = null;
  const load = async () => {
    const params = new URLSearchParams({ limit: '50' });
    if (query.get('action')) params.set('action', query.get('action'));
    if (query.get('since')) params.set('since', `${query.get('since')}T00:00:00Z`);
    if (everyone && query.get('user_id')) params.set('user_id', query.get('user_id'));
    if (before) params.set('before', before);
    const ws = currentWorkspace();
    const own = ws && !ws.personal ? `/v1/workspaces/${ws.id}/audit` : '/v1/audit';
    const { data } = await api('GET', `${everyone ? '/v1/admin/audit' : own}?${params}`);
    append(body, data.map((e) => h('tr', { 'data-action': e.action },
      h('td', {}, fmtTime(e.at)), h('td', {}, h('code', {}, e.action)), h('td', {}, e.actor || '—'),
      h('td', {}, e.target_type ? `${e.target_type} ${e.target_id || ''}` : '—'), h('td', {}, e.ip_address || '—'),
      h('td', {}, h('code', {}, e.request_id || '—')), h('td', {}, h('code', { class: 'audit-details' }, JSON.stringify(e.details))))));
    if (data.length) before = data[data.length - 1].at;
    more.hidden = data.length < 50;
    if (!body.children.length) add(body, h('tr', {}, h('td', { colspan: 7, class: 'muted', id: 'audit-empty' }, t('audit_empty'))));
  };
  more.addEventListener('click', () => load().catch(fail));
  await load();
  add(root, h('h1', {}, t('audit_title')), h('p', { class: 'muted' }, t('audit_hint')), form,
    h('div', { class: 'table-wrap' }, h('table', { id: 'audit-table' },
      h('thead', {}, h('tr', {}, ['audit_when', 'audit_action', 'audit_actor', 'audit_target', 'audit_address', 'audit_request', 'audit_details']
        .map((k) => h('th', { scope: 'col' }, t(k))))), body)), more);
}

/** Where to go once signed in: a team invitation opened before signing in, else the knowledge bases. */
function afterSignIn() {
  const token = sessionStorage.getItem('lore_join');
  sessionStorage.removeItem('lore_join');
  return token ? `#/join?token=${encodeURIComponent(token)}` : '#/kbs';
}

/** Joining a team with an invitation link (`#/join?token=wsi_...`). */
async function pageJoin(root, _, query) {
  const button = h('button', { type: 'button', id: 'join-button' }, t('join_button'));
  button.addEventListener('click', async () => {
    try {
      const joined = await api('POST', '/v1/workspaces/join', { token: query.get('token') || '' });
      toast(t('join_done', joined.name));
      await loadWorkspaces();
      setWorkspace(joined.id);
      go('#/kbs');
    } catch (e) { fail(e); }
  });
  add(root, h('h1', {}, t('join_title')), h('p', { class: 'muted' }, t('join_hint')), h('p', {}, button));
}

/** Team workspaces: create one, and manage the current one's members (owners and admins). */
async function pageTeam(root) {
  const ws = currentWorkspace();
  const name = h('input', { id: 'team-name', required: true, maxlength: 100 });
  const create = h('form', { class: 'card row', id: 'team-create' }, field(t('name'), name), h('button', { type: 'submit' }, t('team_create')));
  onSubmit(create, async () => {
    const made = await api('POST', '/v1/workspaces', { name: name.value });
    toast(t('team_created', made.name));
    setWorkspace(made.id);
    await loadWorkspaces();
    render();
  });
  add(root, h('h1', {}, t('team_title')), h('p', { class: 'muted' }, t('team_hint')), create);
  if (!ws || ws.personal) { add(root, h('p', { class: 'muted', id: 'team-personal' }, t('team_personal_note'))); return; }
  const manage = ws.role === 'owner' || ws.role === 'admin';
  const roles = ws.role === 'owner' ? ['viewer', 'editor', 'admin', 'owner'] : ['viewer', 'editor', 'admin'];
  const roleSelect = (id, value, disabled) => h('select', { id, disabled }, roles.concat(roles.includes(value) ? [] : [value])
    .map((r) => h('option', { value: r, selected: r === value }, t(`role_${r}`))));
  const { data } = await api('GET', `/v1/workspaces/${ws.id}/members`);
  const row = (m) => {
    const self = m.user_id === session.user.id;
    const editable = manage && (ws.role === 'owner' || m.role !== 'owner');
    const select = roleSelect(`role-${m.username}`, m.role, !editable);
    select.addEventListener('change', () => api('PATCH', `/v1/workspaces/${ws.id}/members/${m.user_id}`, { role: select.value })
      .then(() => toast(t('team_role_saved', m.username))).catch((e) => { fail(e); render(); }));
    const remove = editable && !self ? h('button', { type: 'button', class: 'secondary', id: `remove-${m.username}`, onclick: async () => {
      try { await api('DELETE', `/v1/workspaces/${ws.id}/members/${m.user_id}`); toast(t('team_removed', m.username)); render(); } catch (e) { fail(e); }
    } }, t('team_remove')) : null;
    return h('tr', { 'data-member': m.username }, h('td', {}, m.username), h('td', {}, m.email), h('td', {}, select), h('td', {}, remove));
  };
  add(root, h('h2', {}, t('team_members', ws.name)), h('div', { class: 'table-wrap' }, h('table', { id: 'team-members' },
    h('thead', {}, h('tr', {}, [t('username'), t('email'), t('team_role'), ''].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, data.map(row)))));
  if (manage) {
    const who = h('input', { id: 'member-username', required: true });
    const role = roleSelect('member-role', 'viewer', false);
    const form = h('form', { class: 'card row', id: 'member-add' }, field(t('team_username'), who), field(t('team_role'), role), h('button', { type: 'submit' }, t('team_add')));
    onSubmit(form, async () => {
      const added = await api('POST', `/v1/workspaces/${ws.id}/members`, { username: who.value.trim(), role: role.value });
      toast(t('team_added', added.username));
      render();
    });
    add(root, form, await invitationsCard(ws, roleSelect));
  }
  add(root, h('p', {}, h('button', { type: 'button', class: 'secondary', id: 'team-leave', onclick: async () => {
    try {
      await api('DELETE', `/v1/workspaces/${ws.id}/members/${session.user.id}`);
      setWorkspace('');
      await loadWorkspaces();
      go('#/kbs');
    } catch (e) { fail(e); }
  } }, t('team_leave'))));
}

/** Invitation links of a team: make one (shown once), see them used, revoke. */
async function invitationsCard(ws, roleSelect) {
  const who = h('input', { id: 'invite-who' });
  const role = roleSelect('invite-role', 'viewer', false);
  const shown = h('div', { id: 'invite-result', 'aria-live': 'polite' });
  const list = h('ul', { id: 'invite-list' });
  const draw = async () => {
    const { data } = await api('GET', `/v1/workspaces/${ws.id}/invitations`);
    clear(list);
    append(list, data.map((i) => h('li', { 'data-invitation': i.id }, `${i.username || i.email || '—'} · ${t(`role_${i.role}`)} · ${fmtTime(i.expires_at)} `,
      i.used_at ? badge('completed', t('team_invitation_used')) : h('button', { type: 'button', class: 'secondary', onclick: async () => {
        try { await api('DELETE', `/v1/workspaces/${ws.id}/invitations/${i.id}`); await draw(); } catch (e) { fail(e); }
      } }, t('team_revoke')))));
  };
  const form = h('form', { class: 'row', id: 'invite-form' }, field(t('team_invitee'), who), field(t('team_role'), role),
    h('button', { type: 'submit' }, t('team_invite_create')));
  onSubmit(form, async () => {
    const invitee = who.value.trim();
    const body = { role: role.value, ...(invitee.includes('@') ? { email: invitee } : invitee ? { username: invitee } : {}) };
    const made = await api('POST', `/v1/workspaces/${ws.id}/invitations`, body);
    const link = `${location.origin}${made.link}`;
    add(clear(shown), h('p', {}, t('team_invite_link')), h('code', { id: 'invite-link' }, link));
    await draw();
  });
  await draw();
  return h('section', { class: 'card', id: 'team-invitations' }, h('h2', {}, t('team_invite')), h('p', { class: 'muted' }, t('team_invite_hint')),
    form, shown, h('h3', {}, t('team_invitations')), list);
}

async function pageNotifications(root) {
  const { data } = await api('GET', '/v1/notifications');
  add(root, h('h1', {}, t('notifications_title')));
  if (!data.length) { add(root, h('p', { class: 'muted' }, t('notifications_empty'))); return; }
  add(root, h('ul', { class: 'card' }, data.map((n) => h('li', {}, badge(n.kind.endsWith('failed') ? 'failed' : 'ok', n.kind), ' ',
    h('strong', {}, n.title), n.body ? ` — ${n.body}` : '', h('div', { class: 'muted' }, fmtTime(n.created_at))))));
}

// ---------------------------------------------------------------------------------- settings

async function pageSettings(root) {
  const cfg = await api('GET', '/v1/config');
  const num = (key, attrs) => h('input', { type: 'number', value: cfg[key] ?? '', 'data-key': key, ...attrs });
  const text = (key, attrs) => h('input', { value: cfg[key] ?? '', 'data-key': key, ...attrs });
  const secret = (key) => h('input', { type: 'password', autocomplete: 'off', 'data-secret': key, id: `secret-${key}`,
    placeholder: cfg[key] ? `${t('key_stored', cfg[key])} · ${t('key_keep')}` : '' });
  const sw = (key) => h('input', { type: 'checkbox', checked: cfg[key], 'data-switch': key });
  const providers = [['openai', 'OpenAI'], ['anthropic', 'Anthropic'], ['cohere', 'Cohere']];
  const form = h('form', { id: 'settings-form' },
    h('section', { class: 'card' }, h('h2', {}, t('retention')), h('div', { class: 'row' },
      field(t('doc_retention'), num('document_retention_days', { min: 1 })), field(t('conv_retention'), num('conversation_retention_days', { min: 1 })))),
    h('section', { class: 'card' }, h('h2', {}, t('defaults')), h('div', { class: 'row' },
      field(t('default_model'), text('default_embedding_model')), field(t('chunk_size'), num('default_chunk_size', { min: 1 })),
      field(t('chunk_overlap'), num('default_chunk_overlap', { min: 0 })), field(t('threshold'), num('default_similarity_threshold', { min: 0, max: 1, step: 0.01 })),
      field(t('max_results'), num('max_search_results', { min: 1 })))),
    h('section', { class: 'card' }, h('h2', {}, t('notify_switches')),
      h('p', {}, h('label', { class: 'check' }, sw('sync_notifications'), t('sync_notifications'))),
      h('p', {}, h('label', { class: 'check' }, sw('error_notifications'), t('error_notifications')))),
    h('section', { class: 'card' }, h('h2', {}, t('providers')), providers.map(([key, label]) => h('div', { class: 'row' },
      field(t('provider_key', label), secret(`${key}_api_key`)), field(t('provider_url', label), text(`${key}_base_url`, { type: 'url', id: `url-${key}` }))))),
    h('section', { class: 'card' }, h('h2', {}, t('webhook')), h('div', { class: 'row' },
      field(t('webhook_url'), text('webhook_url', { type: 'url' })), field(t('webhook_secret'), secret('webhook_secret')))),
    h('button', { type: 'submit', id: 'settings-save' }, t('save')));
  onSubmit(form, async () => {
    const update = {};
    for (const input of form.querySelectorAll('input[data-key]')) {
      const key = input.dataset.key;
      const value = input.type === 'number' ? numberOrNull(input.value) : input.value.trim() || null;
      if (value !== (cfg[key] ?? null)) update[key] = value;
    }
    for (const input of form.querySelectorAll('input[data-switch]')) if (input.checked !== cfg[input.dataset.switch]) update[input.dataset.switch] = input.checked;
    for (const input of form.querySelectorAll('input[data-secret]')) if (input.value) update[input.dataset.secret] = input.value;
    await api('PUT', '/v1/config', update);
    toast(t('saved'));
    render();
  });
  const current = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const next = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const pw = h('form', { class: 'card' }, h('h2', {}, t('change_password')), h('div', { class: 'row' }, field(t('current_password'), current), field(t('new_password'), next),
    h('div', { class: 'field' }, h('button', { type: 'submit' }, t('change_password')))));
  onSubmit(pw, async () => {
    await api('POST', '/v1/auth/password', { current_password: current.value, new_password: next.value });
    current.value = ''; next.value = '';
    toast(t('password_changed'));
  });
  add(root, h('h1', {}, t('settings_title')), form, pw,
    h('p', {}, h('button', { type: 'button', class: 'secondary', onclick: async () => {
      try { await api('DELETE', '/v1/auth/sessions'); session = null; go('#/signin'); } catch (e) { fail(e); }
    } }, t('sign_out_all'))));
}

// ---------------------------------------------------------------------------------- start

async function start() {
  try { session = await api('GET', '/console/session'); } catch { session = null; }
  try { await loadWorkspaces(); } catch { workspaces = []; }
  window.addEventListener('hashchange', render);
  await render();
}

start();
