# Assembles README.md from docs/*.md (make readme): the README is the one
# document users read; each part of imon keeps its reference in docs/.
import re, os
import sys
root=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
def demote(text):
    out=[]
    infence=False
    for line in text.splitlines():
        if line.startswith('```'):
            infence=not infence
        if not infence and re.match(r'^#{1,5} ', line):
            line='#'+line
        out.append(line)
    return '\n'.join(out)+'\n'
parts=[open(f'{root}/docs/readme-head.md').read(), open(f'{root}/docs/readme-migrate.md').read()]
order=['deploy','config','action','journal','updown-ping','ddns','failover','mqtt']
for name in order:
    p=f'{root}/docs/{name}.md'
    if os.path.exists(p):
        t=open(p).read()
        # first heading becomes a level-2 section
        t=re.sub(r'^# ', '## ', t, count=1)
        lines=t.split('\n',1)
        body=demote(lines[1]) if len(lines)>1 else ''
        # demote made '#'->'##'; but subheadings were '##' -> '###' good
        parts.append(lines[0]+'\n'+body)
dev=open(f'{root}/docs/readme-dev.md').read() if os.path.exists(f'{root}/docs/readme-dev.md') else ''
bench=open(f'{root}/docs/bench.md').read() if os.path.exists(f'{root}/docs/bench.md') else ''
if bench:
    b=re.sub(r'^# .*\n', '', bench, count=1)
    dev=dev+'\n### Benchmarks: `make bench`\n'+demote(demote(b))
f=open(f'{root}/docs/faults.md').read() if os.path.exists(f'{root}/docs/faults.md') else ''
if f:
    f=re.sub(r'^# .*\n', '', f, count=1)
    dev=dev+'\n### Faults, crashes, soak and fuzzing\n'+demote(demote(f))
parts.append(dev)
text=('\n'.join(p.rstrip('\n')+'\n' for p in parts))
text=text.replace('[config.md](config.md)','[Configuration](#configuration-file)')
open(f'{root}/README.md','w').write(text)
#'\n'.join(p.rstrip('\n')+'\n' for p in parts))
