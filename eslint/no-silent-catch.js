/**
 * A caught error is handled on purpose, never dropped by accident (issue 21.2). A catch clause
 * either throws, uses the error it caught (logs it, passes it on, turns it into an answer), or
 * says in a comment inside its block, or on its `catch` line, which expected condition it
 * absorbs and why that is safe. The same holds for a promise's `.catch(callback)` whose callback
 * ignores its error (`.catch(() => undefined)`): it needs that comment in the callback, on the
 * line of `.catch(`, or on the line just above it.
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

/** Is there a comment on line `line`? */
function commentOnLine(source, line) {
  return source.getAllComments().some((c) => c.loc.start.line === line || c.loc.end.line === line);
}

export const noSilentCatch = {
  meta: {
    type: 'problem',
    docs: { description: 'a catch clause or .catch() callback throws, uses its error, or says in a comment why dropping it is safe' },
    messages: {
      silent: 'this catch swallows the error: log it, rethrow, or say in a comment which expected condition it absorbs and why that is safe',
      silentCallback: 'this .catch() drops the error: use it, or say in a comment (on this line or the one above) which failure it absorbs and why that is safe',
    },
    schema: [],
  },
  create(context) {
    const source = context.sourceCode;
    return {
      CatchClause(node) {
        const body = node.body;
        if (source.getCommentsInside(body).length > 0) return;
        if (commentOnLine(source, node.loc.start.line)) return;
        if (walk(body, (n) => n.type === 'ThrowStatement')) return;
        if (node.param !== null) {
          const used = context.sourceCode.getDeclaredVariables(node).some((v) => v.references.length > 0);
          if (used) return;
        }
        context.report({ node, messageId: 'silent' });
      },
      // p.catch(() => …) and p.catch(function () { … }): the callback is the handler.
      'CallExpression[callee.type="MemberExpression"][callee.property.name="catch"]'(node) {
        const handler = node.arguments[0];
        if (node.arguments.length !== 1 || (handler.type !== 'ArrowFunctionExpression' && handler.type !== 'FunctionExpression')) return;
        if (handler.params.length > 0) {
          const used = context.sourceCode.getDeclaredVariables(handler).some((v) => v.defs.some((d) => d.type === 'Parameter') && v.references.length > 0);
          if (used) return;
        }
        if (source.getCommentsInside(handler).length > 0) return;
        if (walk(handler.body, (n) => n.type === 'ThrowStatement')) return;
        const line = node.callee.property.loc.start.line;
        if (commentOnLine(source, line) || commentOnLine(source, line - 1)) return;
        context.report({ node: handler, messageId: 'silentCallback' });
      },
    };
  },
};

export default { rules: { 'no-silent-catch': noSilentCatch } };
