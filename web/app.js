// The page's browser clients: an echo terminal and a chat panel, each a
// WebSocket tunnel to its route (ws://host/PATH, or wss:// over HTTPS).
// Lines go out as text messages; the stream's bytes come back as binary
// messages cut anywhere, so lines are put back together here.
'use strict';

// maxLines caps a transcript, so a long session does not grow the page
// without bound.
const maxLines = 500;

// connect keeps one tunnel for panel (an element with data-path), shows
// its state, and calls onLine for each line received (without its "\n").
// It returns send(line), which reports whether the line went out. A panel
// with data-token waits for the token its form takes: a browser cannot
// set headers on a WebSocket, so the token goes as a subprotocol entry
// beside "binary", which the gateway answers with.
function connect(panel, onLine) {
  const status = panel.querySelector('.status');
  const again = panel.querySelector('.reconnect');
  const tokenForm = panel.querySelector('form.token');
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  let ws = null;
  let protocols = ['binary'];

  function show(state, text) {
    panel.dataset.state = state;
    status.textContent = text;
    again.hidden = state !== 'closed';
  }

  function open() {
    const decoder = new TextDecoder();
    let partial = '';
    show('connecting', 'Connecting…');
    ws = new WebSocket(scheme + location.host + panel.dataset.path, protocols);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => show('open', 'Connected');
    ws.onmessage = (e) => {
      const text = typeof e.data === 'string' ? e.data : decoder.decode(e.data, { stream: true });
      const lines = (partial + text).split('\n');
      partial = lines.pop();
      lines.forEach(onLine);
    };
    ws.onclose = (e) => {
      partial += decoder.decode();
      if (partial) onLine(partial);
      show('closed', 'Disconnected: ' + why(e));
    };
  }

  again.addEventListener('click', open);
  if (tokenForm) {
    show('closed', 'Give the route\'s token to connect.');
    tokenForm.addEventListener('submit', (e) => {
      e.preventDefault();
      protocols = ['binary', 'porthole.token.' + tokenForm.querySelector('input').value];
      open();
    });
  } else {
    open();
  }
  return (line) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(line + '\n');
    return true;
  };
}

// why says in words how a WebSocket closed.
function why(e) {
  if (e.code === 1000) return 'the service ended the stream.';
  if (e.code === 1006) return 'the connection was lost (is the gateway running?).';
  return 'code ' + e.code + (e.reason ? ', ' + e.reason : '') + '.';
}

// add appends a line to a transcript, kept scrolled to the end unless the
// reader has scrolled up.
function add(log, kind, who, text) {
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  const li = document.createElement('li');
  li.className = kind;
  if (who) {
    const name = document.createElement('span');
    name.className = 'who';
    name.textContent = who;
    li.append(name, ' ');
  }
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(body);
  log.append(li);
  while (log.childElementCount > maxLines) log.firstElementChild.remove();
  if (atEnd) log.scrollTop = log.scrollHeight;
}

// form wires a panel's form to send, adding each line sent to the log.
function form(panel, send, mine) {
  const input = panel.querySelector('form.send input');
  panel.querySelector('form.send').addEventListener('submit', (e) => {
    e.preventDefault();
    const line = input.value;
    if (line === '') return;
    if (!send(line)) {
      panel.querySelector('.status').textContent = 'Not connected: the line was not sent.';
      return;
    }
    mine(line);
    input.value = '';
    input.focus();
  });
}

function echoTerminal(panel) {
  const log = panel.querySelector('.log');
  const send = connect(panel, (line) => add(log, 'in', 'echo', line));
  form(panel, send, (line) => add(log, 'out', 'you', line));
}

// chatPanel shows lines from the room ("* …") as notices and the others'
// lines ("NAME: TEXT") under their name. The room does not send a
// participant's own lines back, so they are added as they are sent.
function chatPanel(panel) {
  const log = panel.querySelector('.log');
  const status = panel.querySelector('.status');
  const send = connect(panel, (line) => {
    if (line.startsWith('* ')) {
      const text = line.slice(2);
      const me = /^you are (\S+);/.exec(text);
      if (me) status.textContent = 'Connected as ' + me[1];
      add(log, 'notice', '', text);
      return;
    }
    const m = /^(\S+): ([\s\S]*)$/.exec(line);
    if (m) add(log, 'in', m[1], m[2]);
    else add(log, 'in', '', line);
  });
  form(panel, send, (line) => add(log, 'mine', 'you', line));
}

for (const panel of document.querySelectorAll('[data-widget]')) {
  if (panel.dataset.widget === 'echo') echoTerminal(panel);
  if (panel.dataset.widget === 'chat') chatPanel(panel);
}
