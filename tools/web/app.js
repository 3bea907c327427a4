// The page of `clip-surgery serve`: pick an image, run a job on the local
// server (POST /api/JOB, multipart), draw the answer over the image.
// No framework, nothing fetched from elsewhere (the CSP allows only 'self').
'use strict';

const $ = (id) => document.getElementById(id);
const state = { file: null, image: null, job: null, answer: null, fields: null, current: 0, pictures: [],
  sam: { points: [], labels: [], box: null, drag: null }, seq: 0 };

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = !message;
}

function setBusy(busy, text) {
  $('progress').hidden = !busy;
  $('progress-text').textContent = text || '';
  $('run').disabled = busy || !state.file;
}

async function loadInfo() {
  try {
    const r = await fetch('/api/info');
    const info = await r.json();
    $('model').textContent = `${info.model} · ${info.vision} · ${info.resolution}px · ${info.precision} · ` +
      `${info.threads} threads · v${info.version}`;
    state.maxUpload = info.max_upload_bytes;
    if (info.sam) { // the server has SAM: clicks on the image become its prompts
      $('job-sam').hidden = false;
      $('job-sam').disabled = false;
      $('model').textContent += ` · SAM ${info.sam}`;
    }
  } catch (e) {
    $('model').textContent = 'server not reachable';
  }
}

function chooseFile(file) {
  showError('');
  if (!file) return;
  if (!/^image\/(png|jpeg)$/.test(file.type)) {
    showError(`${file.name}: not a JPEG or PNG image`);
    return;
  }
  if (state.maxUpload && file.size > state.maxUpload) {
    showError(`${file.name} is too large (${(file.size / 1048576).toFixed(1)} MB; the server takes ` +
      `${(state.maxUpload / 1048576).toFixed(0)} MB)`);
    return;
  }
  state.file = file;
  clearPrompts();
  $('drop-text').textContent = file.name;
  const img = new Image();
  img.onload = () => { state.image = img; run(); };
  img.onerror = () => showError(`${file.name}: the browser cannot show this image`);
  img.src = URL.createObjectURL(file);
}

// The job's fields, as the CLI's options.
function fields() {
  const job = $('job').value;
  const f = {};
  if (job === 'sam') return samFields();
  const useText = $('use-text').checked && (job === 'explain' || job === 'points');
  if (job === 'words') f.caption = $('text').value.trim();
  else if (useText) f.text = $('text').value.trim();
  else f.classes = $('classes').value.trim();
  if ($('res').value) f.res = $('res').value;
  if (job === 'classify') f.method = 'both';
  return f;
}

function form(f, extra) {
  const body = new FormData();
  for (const [k, v] of Object.entries(Object.assign({}, f, extra || {}))) {
    for (const one of Array.isArray(v) ? v : [v]) body.append(k, one); // point=... repeats
  }
  body.append('image', state.file, state.file.name);
  return body;
}

async function post(job, f, extra) {
  const r = await fetch(`/api/${job}`, { method: 'POST', body: form(f, extra) });
  if (!r.ok) {
    let message = `${r.status} ${r.statusText}`;
    try { message = (await r.json()).error || message; } catch (e) { /* not JSON */ }
    if (r.status === 503) message += ' (the server is busy; try again shortly)';
    throw new Error(message);
  }
  return r;
}

async function run() {
  if (!state.file) return;
  showError('');
  const job = $('job').value, f = fields();
  showSamRow(job === 'sam');
  const seq = ++state.seq; // a later click's answer wins over an earlier one still on its way
  if (job === 'sam' && !f.point && !f.box && !f.text) { // nothing to ask yet: the photo, waiting for clicks
    Object.assign(state, { job, answer: null, fields: f, current: 0 });
    $('sam-info').textContent = 'Click the image: a point on the object (shift-click or right-click: a point off ' +
      'it); drag for a box.';
    await show();
    $('result').hidden = false;
    return;
  }
  if (!f.classes && !f.text && !f.caption && !f.point && !f.box) {
    showError('give some classes (a,b,c) or a caption');
    return;
  }
  const started = performance.now();
  setBusy(true, `running ${job}…`);
  const tick = setInterval(() => {
    $('progress-text').textContent = `running ${job}… ${((performance.now() - started) / 1000).toFixed(1)} s`;
  }, 100);
  try {
    const answer = await (await post(job, f)).json();
    if (seq !== state.seq) return;
    state.job = job;
    state.answer = answer;
    state.fields = f;
    state.current = 0;
    await show();
    $('result').hidden = false;
    document.body.dataset.done = job; // for scripts and tests: the answer is drawn
  } catch (e) {
    if (seq === state.seq) showError(e.message);
  } finally {
    clearInterval(tick);
    if (seq === state.seq) setBusy(false);
  }
}

function loadPicture(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('a picture in the answer could not be decoded'));
    img.src = url;
  });
}

// The names the switcher offers, and the picture of each.
function items() {
  const a = state.answer;
  switch (state.job) {
    case 'explain': return a.heatmaps.map((h) => ({ name: h.class, url: h.overlay }));
    case 'points': return Object.entries(a.targets).map(([name, t]) => ({ name, points: t.points, labels: t.labels }));
    case 'segment': return [{ name: 'overlay', url: a.overlay }, { name: 'colours', url: a.color }];
    case 'words': return [{ name: 'figure', url: a.figure, whole: true }].concat(
      a.units.map((u) => ({ name: `${u.text} (${u.rank})`, url: u.overlay })));
    case 'sam': return a ? [{ name: 'overlay', url: a.overlay, opaque: true }, { name: 'mask', url: a.mask, opaque: true }]
      : [];
    default: return [];
  }
}

async function show() {
  const list = items();
  state.pictures = await Promise.all(list.map((it) => (it.url ? loadPicture(it.url) : null)));
  const sw = $('switcher');
  sw.replaceChildren();
  list.forEach((it, i) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = it.name;
    b.className = i === state.current ? 'active' : '';
    b.addEventListener('click', () => { state.current = i; show(); });
    sw.appendChild(b);
  });
  $('opacity-row').hidden = !(state.job === 'explain' || state.job === 'segment' || state.job === 'words');
  $('view').hidden = state.job === 'classify';
  draw(list);
  legend();
  scores();
  samInfo();
}

function draw(list) {
  const c = $('view'), img = state.image;
  if (state.job === 'classify') return;
  const it0 = list[state.current], pic0 = state.pictures[state.current];
  if (it0 && it0.whole && pic0) { // a picture of its own (the words figure)
    c.width = pic0.naturalWidth;
    c.height = pic0.naturalHeight;
    c.getContext('2d').drawImage(pic0, 0, 0);
    return;
  }
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.globalAlpha = 1;
  g.drawImage(img, 0, 0);
  const it = list[state.current];
  const pic = state.pictures[state.current];
  if (pic) {
    g.globalAlpha = it.opaque ? 1 : $('opacity').value / 100;
    g.drawImage(pic, 0, 0, pic.naturalWidth, Math.min(pic.naturalHeight, c.height), 0, 0, c.width,
      Math.min(pic.naturalHeight, c.height));
    g.globalAlpha = 1;
  }
  if (it && it.points) {
    const r = Math.max(4, Math.min(c.width, c.height) / 40);
    it.points.forEach(([x, y], k) => {
      g.beginPath();
      g.arc(x, y, r, 0, 2 * Math.PI);
      g.fillStyle = it.labels[k] ? '#1fbf3a' : '#e02424';
      g.fill();
      g.lineWidth = 2;
      g.strokeStyle = '#fff';
      g.stroke();
    });
  }
  if (state.job === 'sam') drawPrompts(g);
}

// ---------------------------------------------------------------- SAM
// The prompts as the page holds them (image pixels), as the API's fields;
// with none, the caption (if chosen) goes through CLIP Surgery's points.
function samFields() {
  const s = state.sam, f = {};
  if (s.points.length) f.point = s.points.map(([x, y], k) => `${x.toFixed(1)},${y.toFixed(1)},${s.labels[k]}`);
  if (s.box) f.box = s.box.map((v) => v.toFixed(1)).join(',');
  if (!s.points.length && !s.box && $('use-text').checked && $('text').value.trim()) f.text = $('text').value.trim();
  if ($('res').value && f.text) f.res = $('res').value;
  return f;
}

function clearPrompts() {
  state.sam = { points: [], labels: [], box: null, drag: null };
}

function showSamRow(on) {
  $('sam-row').hidden = !on;
  $('view').classList.toggle('sam', on);
}

// Pending prompts drawn over the picture (the answer's overlay has them too).
function drawPrompts(g) {
  const s = state.sam, c = $('view');
  const r = Math.max(4, Math.min(c.width, c.height) / 60);
  const box = s.drag && s.drag.moved ? [s.drag.x0, s.drag.y0, s.drag.x1, s.drag.y1] : s.box;
  if (box) {
    g.setLineDash([6, 4]);
    g.lineWidth = 2;
    g.strokeStyle = '#1fbf3a';
    g.strokeRect(Math.min(box[0], box[2]), Math.min(box[1], box[3]), Math.abs(box[2] - box[0]), Math.abs(box[3] - box[1]));
    g.setLineDash([]);
  }
  s.points.forEach(([x, y], k) => {
    g.beginPath();
    g.arc(x, y, r, 0, 2 * Math.PI);
    g.strokeStyle = s.labels[k] ? '#1fbf3a' : '#e02424';
    g.lineWidth = 2;
    g.stroke();
  });
}

function samInfo() {
  if (state.job !== 'sam' || !state.answer) return;
  const a = state.answer, best = a.masks[a.best];
  $('sam-info').textContent = `${a.points.length} point(s)${a.box ? ' + box' : ''} · mask ${a.best + 1} of ` +
    `${a.masks.length} · predicted IoU ${best.iou.toFixed(3)} · ${best.area} pixels · encoder ${a.encoder}`;
  document.body.dataset.samPoints = String(a.points.length);
  document.body.dataset.samEncoder = a.encoder;
}

// A mouse event's position in image pixels (the canvas may be scaled).
function imageXY(e) {
  const c = $('view'), r = c.getBoundingClientRect();
  const x = (e.clientX - r.left) * c.width / r.width, y = (e.clientY - r.top) * c.height / r.height;
  return [Math.min(Math.max(x, 0), c.width - 1), Math.min(Math.max(y, 0), c.height - 1)];
}

// Click: a point (shift or the right button: a negative one); drag: a box.
function wireSam() {
  const c = $('view');
  c.addEventListener('contextmenu', (e) => { if (state.job === 'sam') e.preventDefault(); });
  c.addEventListener('mousedown', (e) => {
    if (state.job !== 'sam') return;
    e.preventDefault();
    const [x, y] = imageXY(e);
    state.sam.drag = { x0: x, y0: y, x1: x, y1: y, moved: false, negative: e.shiftKey || e.button === 2 };
  });
  c.addEventListener('mousemove', (e) => {
    const d = state.sam.drag;
    if (!d) return;
    [d.x1, d.y1] = imageXY(e);
    d.moved = d.moved || Math.hypot(d.x1 - d.x0, d.y1 - d.y0) * c.getBoundingClientRect().width / c.width > 5;
    if (d.moved) draw(items());
  });
  c.addEventListener('mouseup', (e) => {
    const d = state.sam.drag;
    if (!d) return;
    state.sam.drag = null;
    [d.x1, d.y1] = imageXY(e);
    if (d.moved) {
      state.sam.box = [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.max(d.x0, d.x1), Math.max(d.y0, d.y1)];
    } else {
      state.sam.points.push([d.x0, d.y0]);
      state.sam.labels.push(d.negative ? 0 : 1);
    }
    draw(items());
    run();
  });
  $('sam-clear').addEventListener('click', () => {
    clearPrompts();
    run();
  });
}

function legend() {
  const box = $('legend');
  box.replaceChildren();
  if (state.job !== 'segment') return;
  for (const l of state.answer.legend) {
    const span = document.createElement('span');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = `rgb(${l.color.join(',')})`;
    span.appendChild(sw);
    span.appendChild(document.createTextNode(`${l.class} ${(100 * l.fraction).toFixed(1)}%`));
    box.appendChild(span);
  }
}

function scores() {
  const box = $('scores');
  box.replaceChildren();
  if (state.job !== 'classify') return;
  const a = state.answer;
  for (const method of ['surgery', 'clip']) {
    if (!a[method]) continue;
    const h = document.createElement('h3');
    h.textContent = method === 'surgery' ? 'CLIP Surgery' : 'plain CLIP (softmax)';
    box.appendChild(h);
    const top = Math.max(...a[method].map(Math.abs), 1e-9);
    a.classes.forEach((name, i) => {
      const row = document.createElement('div');
      row.className = 'score';
      const label = document.createElement('span');
      label.textContent = name;
      const bar = document.createElement('div');
      bar.className = 'bar';
      bar.style.width = `${Math.max(0, 100 * a[method][i] / top)}%`;
      const value = document.createElement('span');
      value.textContent = a[method][i].toFixed(4);
      row.append(label, bar, value);
      box.appendChild(row);
    });
  }
}

function save(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function wire() {
  const drop = $('drop');
  $('file').addEventListener('change', (e) => chooseFile(e.target.files[0]));
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    chooseFile(e.dataTransfer.files[0]);
  });
  $('run').addEventListener('click', run);
  $('job').addEventListener('change', () => {
    if ($('job').value === 'words') { $('use-text').checked = true; $('text').hidden = false; $('classes').hidden = true; }
    state.answer = null;
    run();
  });
  $('opacity').addEventListener('input', () => draw(items()));
  for (const id of ['use-classes', 'use-text']) {
    $(id).addEventListener('change', () => {
      $('text').hidden = !$('use-text').checked;
      $('classes').hidden = $('use-text').checked;
    });
  }
  for (const id of ['classes', 'text']) $(id).addEventListener('keydown', (e) => { if (e.key === 'Enter') run(); });
  $('dl-png').addEventListener('click', () => save(dataUrlBlob($('view').toDataURL('image/png')), `${state.job}.png`));
  $('dl-json').addEventListener('click', () =>
    save(new Blob([JSON.stringify(state.answer)], { type: 'application/json' }), `${state.job}.json`));
  $('dl-npy').addEventListener('click', async () => {
    if (state.job === 'classify') { showError('classify has no arrays; download the JSON'); return; }
    try {
      const extra = { format: 'npy' };
      if (state.job === 'points') extra.index = String(state.current);
      if (state.job === 'sam') extra.array = 'masks';
      const r = await post(state.job, state.fields, extra);
      const names = { explain: 'maps.npy', words: 'maps.npy', segment: 'labels.npy', points: `points_${state.current}.npy`,
        sam: 'masks.npy' };
      save(await r.blob(), names[state.job]);
    } catch (e) { showError(e.message); }
  });
}

function dataUrlBlob(url) {
  const bytes = atob(url.split(',')[1]);
  const a = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) a[i] = bytes.charCodeAt(i);
  return new Blob([a], { type: 'image/png' });
}

wire();
wireSam();
loadInfo();
