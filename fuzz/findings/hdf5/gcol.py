#!/usr/bin/env python3
"""Lists the global heap collections (GCOL blocks) of HDF5 files and what is wrong with them:
   python3 fuzz/findings/hdf5/gcol.py FILE...  (analysis aid for README.md; assumes 8-byte lengths)"""
import struct, sys
def walk(path):
    b = open(path, 'rb').read()
    i = b.find(b'GCOL')
    while i >= 0:
        ver = b[i+4]; S = struct.unpack_from('<Q', b, i+8)[0]
        probs = []
        if ver != 1: probs.append('version %d' % ver)
        if i + S > len(b): probs.append('collection size %d runs past EOF' % S)
        p = 16
        while p < S and i + p + 16 <= len(b) and len(probs) < 4:
            if p + 16 > S: break
            idx, nref = struct.unpack_from('<HH', b, i+p); size = struct.unpack_from('<Q', b, i+p+8)[0]
            need = 16 + ((size + 7) // 8) * 8 if idx > 0 else size
            if idx == 0 and size == 0: probs.append('free-space object of size 0 at +%d (loader never advances)' % p); break
            if p + need > S: probs.append('object %d at +%d has size %d, past the collection end %d' % (idx, p, size, S))
            if need == 0: break
            p += need
        print('%s: GCOL at %d size %d: %s' % (path.split('/')[-1], i, S, '; '.join(probs) or 'ok'))
        i = b.find(b'GCOL', i + 4)
for f in sys.argv[1:]: walk(f)
