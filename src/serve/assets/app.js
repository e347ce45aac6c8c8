// po-serve: swap in the regions an event stream sends, follow a log, tick
// running durations. All HTML comes from po-serve, escaped there; log text is
// added as text.
'use strict';
(function () {
  const pad = (n) => String(n).padStart(2, '0');
  const human = (secs) => {
    const s = Math.max(0, Math.round(secs));
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, x = s % 60;
    return h ? `${h}h ${pad(m)}m` : m ? `${m}m ${pad(x)}s` : `${x}s`;
  };
  const tick = () => {
    for (const el of document.querySelectorAll('[data-start]')) {
      el.textContent = human((Date.now() - Number(el.dataset.start)) / 1000);
    }
  };
  setInterval(tick, 1000);

  const live = document.getElementById('live');
  const connect = (url, handlers) => {
    const es = new EventSource(url);
    es.onopen = () => { if (live) { live.classList.remove('off'); live.title = 'live'; } };
    es.onerror = () => { if (live) { live.classList.add('off'); live.title = 'reconnecting…'; } };
    for (const [name, fn] of Object.entries(handlers)) es.addEventListener(name, fn);
    return es;
  };

  const board = document.body.dataset.events;
  if (board) {
    connect(board, {
      parts: (e) => {
        const parts = JSON.parse(e.data);
        for (const [id, html] of Object.entries(parts)) {
          const el = document.getElementById(id);
          if (el) el.outerHTML = html;
        }
        tick();
        document.body.dataset.updated = String(Date.now());
      },
    });
  }

  const pre = document.getElementById('log');
  if (pre && pre.dataset.events) {
    const max = 1 << 20;
    const add = (text, reset) => {
      const el = document.scrollingElement;
      const stick = el.scrollTop + el.clientHeight >= el.scrollHeight - 40;
      if (reset) pre.textContent = '';
      pre.append(text);
      if (pre.textContent.length > max) pre.textContent = pre.textContent.slice(-max / 2);
      if (stick) el.scrollTop = el.scrollHeight;
    };
    const es = connect(pre.dataset.events, {
      append: (e) => add(JSON.parse(e.data), false),
      reset: (e) => add(JSON.parse(e.data), true),
      note: (e) => { add('\n[' + JSON.parse(e.data) + ']\n', false); es.close(); },
    });
  }
})();
