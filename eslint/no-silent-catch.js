/**
 * A caught error is handled on purpose, never dropped by accident (issue 21.2): a catch clause
 * either throws, uses the error it caught (logs it, passes it on, turns it into an answer), or
 * says in a comment inside its block, or on its `catch` line, which expected condition it
 * absorbs and why that is safe.
 */
function walk(node, visit) {
  if (node === null || typeof node !== 'object') return false;
  if (visit(node)) return true;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'parent') continue;
    if (Array.isArray(value) ? value.some((v) => walk(v, visit)) : value !== null && typeof value === 'object' && typeof value.type === 'string' && walk(value, visit)) return true;
  }
  return false;
}

export const noSilentCatch = {
  meta: {
    type: 'problem',
    docs: { description: 'a catch clause throws, uses its error, or says in a comment why swallowing it is safe' },
    messages: {
      silent: 'this catch swallows the error: log it, rethrow, or say in a comment which expected condition it absorbs and why that is safe',
    },
    schema: [],
  },
  create(context) {
    const source = context.sourceCode;
    return {
      CatchClause(node) {
        const body = node.body;
        if (source.getCommentsInside(body).length > 0) return;
        const line = node.loc.start.line;
        if (source.getAllComments().some((c) => c.loc.start.line === line)) return;
        if (walk(body, (n) => n.type === 'ThrowStatement')) return;
        if (node.param !== null) {
          const used = context.sourceCode.getDeclaredVariables(node).some((v) => v.references.length > 0);
          if (used) return;
        }
        context.report({ node, messageId: 'silent' });
      },
    };
  },
};

export default { rules: { 'no-silent-catch': noSilentCatch } };
