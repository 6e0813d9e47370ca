// Checks js/files.js against what tlogctl writes: the expected bytes were
// produced by Go (json.Marshal of client.ExportHeader / ExportRecord, and
// tlog.Proof.Marshal with tlog.RecordExtra) for the same inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  goJSONString, exportHeaderLine, exportRecordLine, recordExtra, proofBundleText, uvarint, b64, exportFileName,
} from '../static/js/files.js';

const seq = (n, start) => Uint8Array.from({ length: n }, (_, i) => (start + i * 7) & 0xff);

test('export header is json.Marshal(client.ExportHeader)', () => {
  const got = exportHeaderLine({
    origin: 'example.com/log<&>\u2028é', verifierKey: 'example.com/log+01020304+AQID',
    checkpoint: 'example.com/log\n5\nq80=\n\n— example.com/log ABCD\n', from: 0, to: 5, payloads: true,
    firstProof: [seq(32, 1), seq(32, 2)], lastProof: [],
  });
  assert.equal(got, "{\"format\":\"tlogd-export/v1\",\"origin\":\"example.com/log\\u003c\\u0026\\u003e\\u2028\u00e9\",\"verifier_key\":\"example.com/log+01020304+AQID\",\"checkpoint\":\"example.com/log\\n5\\nq80=\\n\\n\u2014 example.com/log ABCD\\n\",\"from\":0,\"to\":5,\"payloads\":true,\"first_proof\":[\"AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o=\",\"AgkQFx4lLDM6QUhPVl1ka3J5gIeOlZyjqrG4v8bN1Ns=\"],\"last_proof\":[]}\n");
});

test('export records are client.appendRecord', () => {
  assert.equal(exportRecordLine({ index: 3, entry: seq(41, 3), salt: seq(16, 4), payload: seq(300, 5) }), "{\"index\":3,\"entry\":\"AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dzj6vH4/wYNFBs=\",\"salt\":\"BAsSGSAnLjU8Q0pRWF9mbQ==\",\"payload\":\"BQwTGiEoLzY9REtSWWBnbnV8g4qRmJ+mrbS7wsnQ197l7PP6AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh6O/2/QQLEhkgJy41PENKUVhfZm10e4KJkJeepayzusHIz9bd5Ovy+QAHDhUcIyoxOD9GTVRbYmlwd36FjJOaoaivtr3Ey9LZ4Ofu9fwDChEYHyYtNDtCSVBXXmVsc3qBiI+WnaSrsrnAx87V3OPq8fj/Bg0UGyIpMDc+RUxTWmFob3Z9hIuSmaCnrrW8w8rR2N/m7fT7AgkQFx4lLDM6QUhPVl1ka3J5gIeOlZyjqrG4v8bN1Nvi6fD3/gUMExohKC82PURLUllgZ251fIOKkZifpq20u8LJ0Nfe5ezz+gEIDxYdJCsy\"}\n");
  assert.equal(exportRecordLine({ index: 4, entry: seq(57, 6), salt: new Uint8Array(0), payload: new Uint8Array(0), erased: true, erasedBy: 9 }), "{\"index\":4,\"entry\":\"Bg0UGyIpMDc+RUxTWmFob3Z9hIuSmaCnrrW8w8rR2N/m7fT7AgkQFx4lLDM6QUhPVl1ka3J5gIeO\",\"erased_by\":9}\n");
  assert.equal(exportRecordLine({ index: 1234567890123, entry: seq(41, 8) }), "{\"index\":1234567890123,\"entry\":\"CA8WHSQrMjlAR05VXGNqcXh/ho2Um6KpsLe+xczT2uHo7/b9BAsSGSA=\"}\n");
  assert.throws(() => exportRecordLine({ index: 2 ** 53, entry: seq(41, 8) }));
});

test('proof bundle is tlog.Proof.Marshal with tlog.RecordExtra', () => {
  const got = proofBundleText({
    extra: recordExtra(seq(200, 11), seq(16, 12)), index: 77, hashes: [seq(32, 9), seq(32, 10)],
    checkpoint: 'example.com/log\n78\nq80=\n\n— example.com/log ABCD\n',
  });
  assert.equal(got, "c2sp.org/tlog-proof@v1\nextra yAELEhkgJy41PENKUVhfZm10e4KJkJeepayzusHIz9bd5Ovy+QAHDhUcIyoxOD9GTVRbYmlwd36FjJOaoaivtr3Ey9LZ4Ofu9fwDChEYHyYtNDtCSVBXXmVsc3qBiI+WnaSrsrnAx87V3OPq8fj/Bg0UGyIpMDc+RUxTWmFob3Z9hIuSmaCnrrW8w8rR2N/m7fT7AgkQFx4lLDM6QUhPVl1ka3J5gIeOlZyjqrG4v8bN1Nvi6fD3/gUMExohKC82PURLUllgZ251fAwTGiEoLzY9REtSWWBnbnU=\nindex 77\nCRAXHiUsMzpBSE9WXWRrcnmAh46VnKOqsbi/xs3U2+I=\nChEYHyYtNDtCSVBXXmVsc3qBiI+WnaSrsrnAx87V3OM=\n\nexample.com/log\n78\nq80=\n\n\u2014 example.com/log ABCD\n");
  assert.equal(proofBundleText({ index: 0, hashes: [], checkpoint: 'cp\n' }), "c2sp.org/tlog-proof@v1\nindex 0\n\ncp\n");
});

test('goJSONString escapes as encoding/json', () => {
  // Go: json.Marshal("a\b\f\n\r\t\x01\x1f\x7f<>&\u2028\u2029\"\\é😀/")
  assert.equal(goJSONString('a\b\f\n\r\t\x01\x1f\x7f<>&\u2028\u2029"\\é😀/'),
    '"a\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\\u003c\\u003e\\u0026\\u2028\\u2029\\"\\\\é😀/"');
  assert.equal(goJSONString('x\ud800y'), '"x\\ufffdy"');
});

test('uvarint and small helpers', () => {
  assert.deepEqual([...uvarint(0)], [0]);
  assert.deepEqual([...uvarint(127)], [127]);
  assert.deepEqual([...uvarint(128)], [0x80, 1]);
  assert.deepEqual([...uvarint(300)], [0xac, 2]);
  assert.deepEqual([...uvarint(2 ** 40)], [0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
  assert.equal(b64(new Uint8Array(0)), '');
  assert.equal(b64(Uint8Array.from([0xfb, 0xff])), '+/8=');
  assert.equal(b64(new Uint8Array(100000)).length, 133336);
  assert.equal(exportFileName(0, 12), 'tlogd-export-0-12.jsonl');
});
