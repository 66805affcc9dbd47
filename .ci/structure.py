#!/usr/bin/env python3
"""The structure rules of src/ (issue 21), checked in CI:

- no import circles between files (`use crate::`, `use super::` and paths in code, re-exports
  followed to the file that defines the item);
- at most MAX_UPWARD imports from a lower layer to a higher one (LAYERS, lowest first);
- no function longer than MAX_FN_LINES lines.

`python3 .ci/structure.py` prints the graph's figures and exits 1 if a rule is broken;
`--edges` lists every import between files.
"""
import os
import re
import sys

MAX_UPWARD = 4
MAX_FN_LINES = 80
# Services at the bottom, doors on top.
LAYERS = [
    ["proto"],
    ["server::metrics"],
    ["server::database", "server::store"],
    ["server::auth"],
    ["server::cluster"],
    ["server::delivery"],
    ["server::commands", "server::files"],
    ["server::state"],
    ["server::http", "server::ws"],
    ["server", "server::config"],
    ["client"],
    ["lib", "bin"],
]

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src')
files, isdir = {}, {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            parts = os.path.relpath(p, root)[:-3].split('/')
            if parts[-1] in ('mod', 'lib'): parts = parts[:-1]
            files['::'.join(parts)] = p
            isdir['::'.join(parts)] = f in ('mod.rs', 'lib.rs')
text = {m: re.sub(r'//[^\n]*', '', open(p).read()) for m, p in files.items()}
# drop test modules: they may reach anywhere
for m in text:
    i = text[m].find('#[cfg(test)]')
    if i >= 0: text[m] = text[m][:i]
defined = {m: set(re.findall(r'\b(?:struct|enum|fn|trait|type|const|static|union|macro_rules!)\s+(\w+)', t)) for m, t in text.items()}
for m, t in text.items():
    defined[m] |= set(re.findall(r'macro_rules!\s*(\w+)', t))

def expand(tree):
    tree = tree.strip()
    i = tree.find('{')
    if i < 0: return [tree.split(' as ')[0].strip()]
    head, body = tree[:i], tree[i+1:tree.rfind('}')]
    items, cur, depth = [], '', 0
    for ch in body:
        if ch == ',' and depth == 0: items.append(cur); cur = ''; continue
        if ch == '{': depth += 1
        if ch == '}': depth -= 1
        cur += ch
    items.append(cur)
    return [x for it in items if it.strip() for x in expand(head + it.strip())]

def absolute(m, path):
    """A path as written in module m, made absolute (None when outside the crate)."""
    parts = [x for x in path.split('::') if x]
    if not parts: return None
    if parts[0] == 'crate': return parts[1:]
    if parts[0] in ('self', 'super'):
        base = m.split('::') if m else []
        while parts and parts[0] in ('self', 'super'):
            if parts[0] == 'super': base = base[:-1]
            parts = parts[1:]
        return base + parts
    return None

reexports = {}
for m, t in text.items():
    r = {}
    for u in re.finditer(r'\bpub(?:\([^)]*\))?\s+use\s+([^;]*);', t, re.S):
        for full in expand(u.group(1).replace('\n', ' ')):
            a = absolute(m, full) or ((m.split('::') if m else []) + full.split('::'))
            if a: r[a[-1]] = a
    reexports[m] = r

def resolve(parts, seen=0):
    for n in range(len(parts), -1, -1):
        m = '::'.join(parts[:n])
        if m in files:
            rest = parts[n:]
            if rest and rest[0] not in defined[m] and rest[0] in reexports[m] and seen < 8:
                return resolve(reexports[m][rest[0]] + rest[1:], seen + 1)
            return m
    return None

edges = {}
for m, t in text.items():
    targets = set()
    for u in re.finditer(r'\buse\s+((?:crate|super|self)::[^;]*);', t, re.S):
        for full in expand(u.group(1).replace('\n', ' ')):
            a = absolute(m, full.rstrip('*').rstrip(':'))
            if a is not None:
                x = resolve(a)
                if x is not None and x != m: targets.add(x)
    for u in re.finditer(r'(?<![\w:])((?:crate|super)(?:::\w+)+)', t):
        a = absolute(m, u.group(1))
        if a is not None:
            x = resolve(a)
            if x is not None and x != m: targets.add(x)
    edges[m] = targets

index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
    for w in sorted(edges.get(v, ())):
        if w not in index: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        if len(c) > 1: sccs.append(sorted(c))
for v in sorted(edges):
    if v not in index: strong(v)


def layer(m):
    if m == '':  # lib.rs
        return len(LAYERS) - 1
    best = (-1, None)
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (m == p or m.startswith(p + '::')) and len(p) > best[0]:
                best = (len(p), i)
    return best[1]


def long_functions():
    found = []
    for m, p in files.items():
        lines = open(p).read().split('\n')
        i = 0
        while i < len(lines):
            f = re.match(r'^(\s*)(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)', lines[i])
            if not f:
                i += 1
                continue
            indent, name = len(f.group(1)), f.group(7)
            j = i
            while j < len(lines) and '{' not in lines[j] and not lines[j].rstrip().endswith(';'):
                j += 1
            if j < len(lines) and '{' in lines[j]:
                k = j + 1
                while k < len(lines) and not (lines[k].startswith(' ' * indent + '}')
                                              and len(lines[k]) - len(lines[k].lstrip()) == indent):
                    k += 1
                if k - i + 1 > MAX_FN_LINES:
                    found.append((k - i + 1, f"{os.path.relpath(p)}:{i + 1} {name}"))
            i = j + 1
    return sorted(found, reverse=True)


up = [(m, t) for m in sorted(edges) for t in sorted(edges[m])
      if layer(m) is not None and layer(t) is not None and layer(t) > layer(m)]
unplaced = [m for m in sorted(files) if layer(m) is None]
long = long_functions()
print(f"{len(files)} files, {sum(len(t) for t in edges.values())} imports between them")
print(f"circles: {len(sccs)}")
for c in sccs:
    print("  ", " <-> ".join(c))
print(f"upward imports: {len(up)} (at most {MAX_UPWARD})")
for m, t in up:
    print(f"   {m} (layer {layer(m)}) -> {t} (layer {layer(t)})")
if unplaced:
    print("in no layer:", ", ".join(unplaced))
print(f"functions over {MAX_FN_LINES} lines: {len(long)}")
for n, where in long:
    print(f"   {n} {where}")
if '--edges' in sys.argv:
    for m in sorted(edges):
        print(m, '->', ', '.join(sorted(edges[m])))
sys.exit(1 if sccs or len(up) > MAX_UPWARD or unplaced or long else 0)
