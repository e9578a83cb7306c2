/**
 * Notifications in the lab (#18): the toast poller (cursor from `last_id`,
 * the user's in-lab rows only, one toast per row, the kind per event, the
 * Open action), the links' `?lepton-job=`, the Run-as-job dialog's Notify
 * part (the `notify` list, its checks, the server's 400 in the dialog) and
 * the sidebar's failed deliveries.
 */
import { Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { INotification } from '../src/api';
import { JobForm, parseJobForm, parseNotify } from '../src/jobdialog';
import { LeptonModels } from '../src/models';
import {
  FailedNotificationsModel,
  FailedNotificationsSection,
  ISubject,
  NotificationToasts,
  subjectFromUrl,
  toastKind,
  toastOf
} from '../src/notifications';
import { LeptonSidebar } from '../src/sidebar';
import { IRecorded, StubServer, until } from './stub-server';

jest.mock('@jupyterlab/apputils', () => {
  const actual = jest.requireActual('@jupyterlab/apputils');
  return {
    ...actual,
    Notification: {
      ...actual.Notification,
      success: jest.fn(() => 'n-success'),
      error: jest.fn(() => 'n-error'),
      warning: jest.fn(() => 'n-warning'),
      info: jest.fn(() => 'n-info')
    }
  };
});

const mockSuccess = Notification.success as jest.Mock;
const mockError = Notification.error as jest.Mock;
const mockWarning = Notification.warning as jest.Mock;
const mockInfo = Notification.info as jest.Mock;

function row(
  id: number,
  fields: Partial<INotification> & { text?: string } = {}
): INotification {
  const { text, ...rest } = fields;
  const event = rest.event ?? 'completed';
  return {
    id,
    event,
    channel: 'jupyterlab',
    display: '',
    subject_kind: 'job',
    subject_id: `j${id}`,
    user: 'ann',
    title: `[Lepton Lab] job train.ipynb ${event.replace('_', ' ')}`,
    message: {
      text:
        text ??
        `Job train.ipynb (j${id}) ${event.replace('_', ' ')}.\nNotebook: train.ipynb`,
      event,
      kind: 'job'
    },
    status: 'sent',
    attempts: 1,
    max_attempts: 1,
    next_attempt_at: 0,
    error: null,
    created_at: 1764250000 + id,
    sent_at: 1764250001 + id,
    ...rest
  };
}

/** The query of a recorded request, as a map. */
function query(request: IRecorded): URLSearchParams {
  return new URLSearchParams(request.path.split('?')[1] ?? '');
}

function q<T extends HTMLElement = HTMLElement>(
  root: HTMLElement,
  selector: string
): T {
  const node = root.querySelector<T>(selector);
  if (!node) {
    throw new Error(`no ${selector}`);
  }
  return node;
}

beforeEach(() => {
  mockSuccess.mockClear();
  mockError.mockClear();
  mockWarning.mockClear();
  mockInfo.mockClear();
});

describe('toasts', () => {
  it('maps events to kinds and rows to texts and subjects', () => {
    expect(toastKind('completed')).toBe('success');
    expect(toastKind('failed')).toBe('error');
    expect(toastKind('timed_out')).toBe('error');
    expect(toastKind('late')).toBe('warning');
    expect(toastKind('test')).toBe('info');
    const toast = toastOf(row(3, { event: 'timed_out' }));
    expect(toast).toEqual({
      kind: 'error',
      text: 'Job train.ipynb (j3) timed out.',
      subject: { kind: 'job', id: 'j3' }
    });
    // no text: the title without its prefix
    const bare = toastOf(
      row(4, { subject_kind: 'run', subject_id: 'r4', message: {} })
    );
    expect(bare.text).toBe('job train.ipynb completed');
    expect(bare.subject).toEqual({ kind: 'run', id: 'r4' });
    // a test message is about nothing the lab can open
    expect(
      toastOf(row(5, { subject_kind: 'test', event: 'test' })).subject
    ).toBe(null);
  });

  it('starts at last_id, shows each new row of the user once with its kind and opens it', async () => {
    const server = new StubServer();
    const pages: { notifications: INotification[]; last_id: number }[] = [
      // the first read: an old row, never shown
      { notifications: [row(5, { event: 'failed' })], last_id: 5 },
      {
        notifications: [
          row(6),
          row(7, { event: 'failed' }),
          row(8, {
            event: 'timed_out',
            subject_kind: 'run',
            subject_id: 'r8',
            text: 'Run mnist (r8, torch, 2 worker(s)) timed out.'
          }),
          row(9, {
            event: 'late',
            subject_kind: 'schedule',
            subject_id: 's9',
            text: 'Schedule nightly is late.'
          })
        ],
        last_id: 9
      },
      { notifications: [], last_id: 9 }
    ];
    server.on('GET notifications', () => ({
      body: pages.shift() ?? { notifications: [], last_id: 9 }
    }));
    const opened: ISubject[] = [];
    const toasts = new NotificationToasts({
      client: server.client(),
      open: subject => opened.push(subject),
      interval: 60000
    });
    await toasts.refresh();
    expect(toasts.cursor).toBe(5);
    const first = query(
      server.calls('GET notifications')[0] ?? server.requests[0]
    );
    expect(first.get('channel')).toBe('jupyterlab');
    expect(first.get('mine')).toBe('true');
    expect(first.has('since')).toBe(false);
    expect(mockSuccess).not.toHaveBeenCalled();
    expect(mockError).not.toHaveBeenCalled();

    await toasts.refresh();
    const second = query(server.requests[1]);
    expect(second.get('since')).toBe('5');
    expect(second.get('channel')).toBe('jupyterlab');
    expect(second.get('mine')).toBe('true');
    expect(toasts.cursor).toBe(9);

    expect(mockSuccess).toHaveBeenCalledTimes(1);
    expect(mockSuccess.mock.calls[0][0]).toBe(
      'Job train.ipynb (j6) completed.'
    );
    expect(mockSuccess.mock.calls[0][1].autoClose).toBeGreaterThan(0);
    expect(mockError).toHaveBeenCalledTimes(2);
    expect(mockError.mock.calls.map(c => c[0])).toEqual([
      'Job train.ipynb (j7) failed.',
      'Run mnist (r8, torch, 2 worker(s)) timed out.'
    ]);
    expect(mockError.mock.calls[0][1].autoClose).toBe(false);
    expect(mockWarning).toHaveBeenCalledTimes(1);
    expect(mockWarning.mock.calls[0][0]).toBe('Schedule nightly is late.');

    // Open: the job, the run
    const [openJob] = mockSuccess.mock.calls[0][1].actions;
    expect(openJob.label).toBe('Open');
    openJob.callback(new Event('click'));
    mockError.mock.calls[1][1].actions[0].callback(new Event('click'));
    expect(opened).toEqual([
      { kind: 'job', id: 'j6' },
      { kind: 'run', id: 'r8' }
    ]);

    // the next read starts after the newest: nothing twice
    await toasts.refresh();
    expect(query(server.requests[2]).get('since')).toBe('9');
    expect(mockSuccess).toHaveBeenCalledTimes(1);
    expect(mockError).toHaveBeenCalledTimes(2);
    toasts.dispose();
  });

  it('keeps its cursor through a failed read and shows nothing twice', async () => {
    const server = new StubServer();
    let fail = false;
    server.on('GET notifications', request => {
      if (fail) {
        return { status: 500, body: { message: 'database is locked' } };
      }
      const since = query(request).get('since');
      return {
        body:
          since === null
            ? { notifications: [], last_id: 0 }
            : {
                notifications: [row(1), row(2)].filter(
                  r => r.id > Number(since)
                ),
                last_id: 2
              }
      };
    });
    const toasts = new NotificationToasts({
      client: server.client(),
      open: () => undefined,
      interval: 60000
    });
    await toasts.refresh();
    expect(toasts.cursor).toBe(0);
    await toasts.refresh();
    expect(toasts.cursor).toBe(2);
    expect(mockSuccess).toHaveBeenCalledTimes(2);
    fail = true;
    await toasts.refresh();
    expect(toasts.error?.message).toContain('database is locked');
    expect(toasts.cursor).toBe(2);
    fail = false;
    await toasts.refresh();
    expect(toasts.error).toBe(null);
    expect(mockSuccess).toHaveBeenCalledTimes(2);
    toasts.dispose();
  });

  it("reads the links' ?lepton-job= and ?lepton-run=", () => {
    expect(subjectFromUrl('?lepton-job=abc123')).toEqual({
      kind: 'job',
      id: 'abc123'
    });
    expect(subjectFromUrl('?reset&lepton-run=r%2F1')).toEqual({
      kind: 'run',
      id: 'r/1'
    });
    expect(subjectFromUrl('?token=x')).toBe(null);
    expect(subjectFromUrl('')).toBe(null);
  });
});

describe('the Notify part of the Run-as-job dialog', () => {
  const FIELDS = {
    parameters: '{}',
    timeout: '',
    retries: '0',
    schedule: false,
    cron: '',
    timezone: 'UTC'
  };

  it('builds the notify list for a job and a schedule', () => {
    expect(
      parseNotify({ events: [], after: '', channel: 'email', target: '' })
    ).toBeUndefined();
    const job = parseJobForm('a.ipynb', {
      ...FIELDS,
      notify: {
        events: ['completed', 'failed'],
        after: '3h',
        channel: 'email',
        target: ' ann@example.com, bob@example.org ;carl@lab.test '
      }
    });
    expect(job.kind).toBe('job');
    // the form's order, no "after" unless late
    expect(job.body.notify).toEqual([
      {
        on: ['failed', 'completed'],
        channel: 'email',
        to: ['ann@example.com', 'bob@example.org', 'carl@lab.test']
      }
    ]);
    const schedule = parseJobForm('a.ipynb', {
      ...FIELDS,
      schedule: true,
      cron: '0 6 * * *',
      notify: {
        events: ['late', 'timed_out'],
        after: ' 2h ',
        channel: 'webhook',
        target: 'https://hooks.example.com/T1/B2'
      }
    });
    expect(schedule.kind).toBe('schedule');
    expect(schedule.body.notify).toEqual([
      {
        on: ['timed_out', 'late'],
        channel: 'webhook',
        url: 'https://hooks.example.com/T1/B2',
        after: '2h'
      }
    ]);
    expect(parseJobForm('a.ipynb', { ...FIELDS }).body.notify).toBeUndefined();
  });

  it.each([
    [
      { events: [], channel: 'email', target: 'ann@example.com' },
      'choose when'
    ],
    [
      { events: ['failed'], channel: 'email', target: '' },
      'at least one address'
    ],
    [
      { events: ['failed'], channel: 'email', target: 'ann@example.com, nope' },
      'not an email address: nope'
    ],
    [{ events: ['failed'], channel: 'webhook', target: '' }, 'needs its URL'],
    [
      { events: ['failed'], channel: 'webhook', target: 'ftp://x.test/h' },
      'http:// or https://'
    ],
    [
      { events: ['late'], channel: 'webhook', target: 'http://x.test/h' },
      'needs a duration'
    ],
    [{ events: ['failed'], channel: '', target: 'a@b.c' }, 'choose a channel']
  ] as const)('refuses %j', (fields, message) => {
    expect(() =>
      parseNotify({ after: '', ...fields, events: [...fields.events] })
    ).toThrow(new RegExp(message, 'i'));
  });

  function makeForm(server: StubServer, schedule = false): JobForm {
    const models = new LeptonModels({ client: server.client() });
    const form = new JobForm('a.ipynb', schedule, models);
    Widget.attach(form, document.body);
    return form;
  }

  const CONFIG = {
    version: '1',
    default_executor: 'local',
    executors: [{ name: 'local', description: 'here' }],
    channels: [
      { name: 'email', description: 'SMTP' },
      { name: 'webhook', description: 'a POST' },
      { name: 'jupyterlab', description: 'toasts' }
    ],
    features: {}
  };

  it('offers the server channels but the lab one, shows "after" with late, and POSTs the rule', async () => {
    const server = new StubServer().on('GET config', { body: CONFIG });
    server.on('POST jobs', request => ({
      status: 201,
      body: { id: 'j1', name: 'a.ipynb', status: 'queued', notify: [] }
    }));
    const form = makeForm(server);
    const section = q(form.node, '.lepton-job-notify');
    await until(() => !section.hidden);
    expect(section.hidden).toBe(false);
    const channel = q<HTMLSelectElement>(
      form.node,
      '.lepton-job-notify-channel'
    );
    expect([...channel.options].map(o => o.value)).toEqual([
      'email',
      'webhook'
    ]);
    const after = q<HTMLInputElement>(form.node, '.lepton-job-notify-after');
    const afterField = after.closest('label') as HTMLElement;
    expect(afterField.hidden).toBe(true);
    const boxes = [
      ...form.node.querySelectorAll<HTMLInputElement>(
        '.lepton-job-notify-event'
      )
    ];
    expect(boxes.map(b => b.value)).toEqual([
      'failed',
      'timed_out',
      'completed',
      'late'
    ]);
    const late = boxes[3];
    late.checked = true;
    late.dispatchEvent(new Event('change'));
    expect(afterField.hidden).toBe(false);

    // late without a duration: refused in the dialog, nothing sent
    channel.value = 'webhook';
    channel.dispatchEvent(new Event('change'));
    const target = q<HTMLInputElement>(form.node, '.lepton-job-notify-target');
    target.value = 'http://127.0.0.1:9/hook';
    boxes[0].checked = true;
    expect(await form.submit()).toBe(false);
    const error = q(form.node, '.lepton-job-form-error');
    expect(error.hidden).toBe(false);
    expect(error.textContent).toMatch(/needs a duration/);
    expect(server.calls('POST jobs')).toHaveLength(0);

    after.value = '30m';
    expect(await form.submit()).toBe(true);
    const [posted] = server.calls('POST jobs');
    expect((posted.body as { notify: unknown }).notify).toEqual([
      {
        on: ['failed', 'late'],
        channel: 'webhook',
        url: 'http://127.0.0.1:9/hook',
        after: '30m'
      }
    ]);
    form.dispose();
  });

  it("shows the server's 400 in the dialog, for a schedule too", async () => {
    const server = new StubServer().on('GET config', { body: CONFIG });
    server.on('POST schedules', {
      status: 400,
      body: { message: "notify[0]: unknown event 'exploded'" }
    });
    const form = makeForm(server, true);
    const section = q(form.node, '.lepton-job-notify');
    await until(() => !section.hidden);
    q<HTMLInputElement>(form.node, '.lepton-job-cron').value = '0 6 * * *';
    const failed = form.node.querySelector<HTMLInputElement>(
      '.lepton-job-notify-event[value="failed"]'
    ) as HTMLInputElement;
    failed.checked = true;
    q<HTMLInputElement>(form.node, '.lepton-job-notify-target').value =
      'ann@example.com';
    expect(await form.submit()).toBe(false);
    const [posted] = server.calls('POST schedules');
    expect((posted.body as { notify: unknown }).notify).toEqual([
      { on: ['failed'], channel: 'email', to: ['ann@example.com'] }
    ]);
    const error = q(form.node, '.lepton-job-form-error');
    expect(error.hidden).toBe(false);
    expect(error.textContent).toContain("unknown event 'exploded'");
    form.dispose();
  });

  it('has no Notify part on a server without channels', async () => {
    const server = new StubServer().on('GET config', {
      body: { ...CONFIG, channels: [{ name: 'jupyterlab', description: '' }] }
    });
    server.on('POST jobs', {
      status: 201,
      body: { id: 'j1', name: 'a.ipynb', status: 'queued' }
    });
    const form = makeForm(server);
    await until(() => server.calls('GET config').length > 0);
    await until(() => false, 50);
    expect(q(form.node, '.lepton-job-notify').hidden).toBe(true);
    expect(form.notifyFields.events).toEqual([]);
    expect(await form.submit()).toBe(true);
    expect(server.calls('POST jobs')[0].body).not.toHaveProperty('notify');
    form.dispose();
  });
});

describe('failed deliveries in the sidebar', () => {
  const FAILED = [
    row(12, {
      channel: 'webhook',
      display: '127.0.0.1',
      event: 'failed',
      status: 'failed',
      attempts: 5,
      max_attempts: 5,
      error: 'Connection refused\nTraceback ...'
    }),
    row(10, {
      channel: 'email',
      display: 'ann@example.com',
      status: 'failed',
      attempts: 3,
      max_attempts: 3,
      error: 'SMTP 550 mailbox unavailable',
      title: '[Lepton Lab] job nightly.ipynb completed'
    })
  ];

  it('lists them (status=failed) with title, channel, target, error and time; hidden when none', async () => {
    let rows: INotification[] = [];
    const server = new StubServer().on('GET notifications', () => ({
      body: { notifications: rows, last_id: 12 }
    }));
    const model = new FailedNotificationsModel({ client: server.client() });
    const section = new FailedNotificationsSection({ model });
    Widget.attach(section, document.body);
    await model.refresh();
    expect(query(server.requests[0]).get('status')).toBe('failed');
    expect(section.isHidden).toBe(true);
    expect(section.node.querySelectorAll('.lepton-notification')).toHaveLength(
      0
    );

    rows = FAILED;
    await model.refresh();
    expect(section.isHidden).toBe(false);
    expect(section.node.dataset.leptonCount).toBe('2');
    const items = [
      ...section.node.querySelectorAll<HTMLElement>('li.lepton-notification')
    ];
    expect(items.map(i => i.dataset.leptonNotificationId)).toEqual([
      '12',
      '10'
    ]);
    const first = items[0];
    expect(q(first, '.lepton-notification-title').textContent).toBe(
      'job train.ipynb failed'
    );
    expect(q(first, '.lepton-notification-channel').textContent).toBe(
      'webhook → 127.0.0.1'
    );
    expect(q(first, '.lepton-notification-error').textContent).toBe(
      'Connection refused'
    );
    expect(q(first, '.lepton-notification-error').title).toContain('Traceback');
    expect(q(first, '.lepton-notification-attempts').textContent).toBe(
      '5/5 attempts'
    );
    expect(q(first, '.lepton-notification-time').textContent).not.toBe('');
    expect(q(first, '.lepton-notification-time').textContent).not.toBe('—');
    expect(q(items[1], '.lepton-notification-channel').textContent).toBe(
      'email → ann@example.com'
    );

    rows = [];
    await model.refresh();
    expect(section.isHidden).toBe(true);
    section.dispose();
    model.dispose();
  });

  it('is a section of the sidebar, read by its refresh', async () => {
    const server = new StubServer().on('GET notifications', {
      body: { notifications: FAILED, last_id: 12 }
    });
    const models = new LeptonModels({ client: server.client() });
    const sidebar = new LeptonSidebar({
      models,
      openRun: () => undefined,
      openJobLog: () => undefined,
      openModel: () => undefined
    });
    expect(sidebar.widgets).toContain(sidebar.failed);
    // not attached: nobody looks, the model stands by
    await sidebar.refresh();
    expect(
      server.calls('GET notifications?status=failed&limit=20')
    ).toHaveLength(0);
    expect(sidebar.failed.isHidden).toBe(true);
    Widget.attach(sidebar, document.body);
    await sidebar.refresh();
    await until(() => !sidebar.failed.isHidden);
    expect(
      server.calls('GET notifications?status=failed&limit=20').length
    ).toBeGreaterThanOrEqual(1);
    expect(sidebar.failed.isHidden).toBe(false);
    expect(
      sidebar.failed.node.querySelectorAll('.lepton-notification')
    ).toHaveLength(2);
    sidebar.dispose();
    expect(sidebar.failedModel.isDisposed).toBe(true);
    models.dispose();
  });
});
