/**
 * The "Run as job" dialog's Secrets section (rows of name + password value,
 * checked names, `secrets` in the request, values forgotten after submit) and
 * the secret names in the sidebar's job and schedule rows.
 */
import { Widget } from '@lumino/widgets';

import {
  JobForm,
  MAX_SECRETS,
  parseJobForm,
  parseSecrets,
  SecretsError,
  secretNameError
} from '../src/jobdialog';
import { JobsSection, SchedulesSection, secretNamesText } from '../src/jobs';
import { LeptonModels } from '../src/models';
import { StubServer, until } from './stub-server';

const VALUE = 's3cr3t-value-Zq81';
const OTHER = 'second-value-Kp44';

const FIELDS = {
  parameters: '{"n": 3}',
  timeout: '',
  retries: '0',
  schedule: false,
  cron: '',
  timezone: 'UTC'
};

const JOB = {
  id: 'j1',
  name: 'params.ipynb',
  path: 'params.ipynb',
  status: 'queued',
  kernel: 'python3',
  parameters: { n: 3 },
  attempt: 0,
  secret_names: ['API_TOKEN']
};

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

/** Type into an input as a user does (value, then an input event). */
function type(input: HTMLInputElement, text: string): void {
  input.value = text;
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

/** Every console call's arguments, as text. */
function spyConsole(): { text: () => string; restore: () => void } {
  const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map(m =>
    jest.spyOn(console, m).mockImplementation(() => undefined)
  );
  return {
    text: () =>
      spies
        .flatMap(spy => spy.mock.calls)
        .map(args => args.map(a => String(a)).join(' '))
        .join('\n'),
    restore: () => spies.forEach(spy => spy.mockRestore())
  };
}

function makeForm(server: StubServer, schedule = false) {
  const models = new LeptonModels({ client: server.client() });
  const form = new JobForm('params.ipynb', schedule, models);
  Widget.attach(form, document.body);
  return { form, models };
}

afterEach(() => {
  document.body.replaceChildren();
});

describe('secret names and values', () => {
  it('takes environment variable names and refuses others without repeating them', () => {
    for (const name of [
      'API_TOKEN',
      '_x',
      'a1',
      'DB_PASSWORD',
      'x'.repeat(128)
    ]) {
      expect(secretNameError(name)).toBe('');
    }
    expect(secretNameError('')).toBe('A secret needs a name');
    expect(secretNameError('   ')).toBe('A secret needs a name');
    expect(secretNameError('x'.repeat(129))).toMatch(/at most 128/);
    expect(secretNameError('LEPTON_LAB_TOKEN')).toMatch(/Lepton Lab's own/);
    expect(secretNameError('lepton_lab_x')).toMatch(/Lepton Lab's own/);
    for (const name of ['1ABC', 'API-TOKEN', 'A B', 'tök', 'a.b', '$X']) {
      const message = secretNameError(name);
      expect(message).toMatch(/environment variable name/);
      expect(message).not.toContain(name);
    }
  });

  it('parses rows into secrets: names trimmed, values as typed, blank rows skipped', () => {
    expect(parseSecrets([])).toBeUndefined();
    expect(parseSecrets([{ name: ' ', value: '' }])).toBeUndefined();
    expect(
      parseSecrets([
        { name: ' API_TOKEN ', value: ` ${VALUE} ` },
        { name: '', value: '' },
        { name: 'DB_PASSWORD', value: OTHER }
      ])
    ).toEqual({ API_TOKEN: ` ${VALUE} `, DB_PASSWORD: OTHER });
    // an own key, even for a name that is also Object.prototype's accessor
    const odd = parseSecrets([{ name: '__proto__', value: VALUE }]);
    expect(Object.keys(odd ?? {})).toEqual(['__proto__']);
    expect(JSON.stringify(odd)).toBe(`{"__proto__":"${VALUE}"}`);
  });

  it('refuses bad rows with messages that never hold a value', () => {
    const cases: Array<[Array<{ name: string; value: string }>, RegExp]> = [
      [
        [{ name: 'API-TOKEN', value: VALUE }],
        /^Secret 1: An environment variable name/
      ],
      [[{ name: '', value: VALUE }], /^Secret 1: A secret needs a name/],
      [
        [
          { name: 'A', value: OTHER },
          { name: 'A', value: VALUE }
        ],
        /^Secret A is given twice/
      ],
      [[{ name: 'A', value: '' }], /^Secret A has no value/],
      [[{ name: 'A', value: 'x'.repeat(64 * 1024 + 1) }], /too long/],
      // 64 Ki characters, but twice as many bytes in UTF-8
      [[{ name: 'A', value: 'é'.repeat(32 * 1024 + 1) }], /too long/],
      [[{ name: 'A', value: `${VALUE}\0` }], /NUL/],
      [
        Array.from({ length: 5 }, (_, i) => ({
          name: `S${i}`,
          value: `${VALUE}${'x'.repeat(60 * 1024)}`
        })),
        /too long together/
      ]
    ];
    for (const [rows, expected] of cases) {
      let message = '';
      try {
        parseSecrets(rows);
      } catch (error) {
        expect(error).toBeInstanceOf(SecretsError);
        message = (error as Error).message;
      }
      expect(message).toMatch(expected);
      expect(message).not.toContain(VALUE);
      expect(message).not.toContain(OTHER);
    }
    const many = Array.from({ length: MAX_SECRETS + 1 }, (_, i) => ({
      name: `S${i}`,
      value: 'v'
    }));
    expect(() => parseSecrets(many)).toThrow(`At most ${MAX_SECRETS} secrets`);
    expect(parseSecrets(many.slice(0, MAX_SECRETS))).toBeDefined();
  });

  it('puts secrets in job and schedule bodies, and nothing when there are none', () => {
    const job = parseJobForm('a.ipynb', {
      ...FIELDS,
      secrets: [{ name: 'API_TOKEN', value: VALUE }]
    });
    expect(job).toEqual({
      kind: 'job',
      body: {
        path: 'a.ipynb',
        parameters: { n: 3 },
        output_formats: ['ipynb', 'html'],
        retries: 0,
        secrets: { API_TOKEN: VALUE }
      }
    });
    const schedule = parseJobForm('a.ipynb', {
      ...FIELDS,
      schedule: true,
      cron: '0 6 * * *',
      secrets: [{ name: 'API_TOKEN', value: VALUE }]
    });
    expect(schedule.kind).toBe('schedule');
    expect(schedule.body.secrets).toEqual({ API_TOKEN: VALUE });
    const plain = parseJobForm('a.ipynb', {
      ...FIELDS,
      secrets: [{ name: '', value: '' }]
    });
    expect('secrets' in plain.body).toBe(false);
  });
});

describe('the Secrets section of the dialog', () => {
  it('adds rows of a name and a password value, and removes them', () => {
    const { form, models } = makeForm(new StubServer());
    const section = q(form.node, '.lepton-job-secrets');
    expect(section.querySelectorAll('.lepton-job-secret')).toHaveLength(0);
    q<HTMLButtonElement>(section, 'button.lepton-job-secret-add').click();
    q<HTMLButtonElement>(section, 'button.lepton-job-secret-add').click();
    const rows = section.querySelectorAll<HTMLElement>('.lepton-job-secret');
    expect(rows).toHaveLength(2);
    const value = q<HTMLInputElement>(rows[0], 'input.lepton-job-secret-value');
    expect(value.type).toBe('password');
    expect(value.getAttribute('autocomplete')).toBe('off');
    const name = q<HTMLInputElement>(rows[0], 'input.lepton-job-secret-name');
    expect(name.type).toBe('text');
    expect(document.activeElement).toBe(
      q<HTMLInputElement>(rows[1], 'input.lepton-job-secret-name')
    );
    type(name, 'API_TOKEN');
    type(value, VALUE);
    q<HTMLButtonElement>(rows[0], 'button.lepton-job-secret-remove').click();
    expect(section.querySelectorAll('.lepton-job-secret')).toHaveLength(1);
    expect(value.value).toBe(''); // the removed row's value is emptied
    expect(form.secretRows).toHaveLength(1);
    form.dispose();
    models.dispose();
  });

  it('stops adding rows at the limit', () => {
    const { form, models } = makeForm(new StubServer());
    const add = q<HTMLButtonElement>(form.node, 'button.lepton-job-secret-add');
    for (let i = 0; i < MAX_SECRETS + 3; i++) {
      add.click();
    }
    expect(form.node.querySelectorAll('.lepton-job-secret')).toHaveLength(
      MAX_SECRETS
    );
    expect(add.disabled).toBe(true);
    form.dispose();
    models.dispose();
  });

  it('checks a name as it is typed, with the message under the field', () => {
    const { form, models } = makeForm(new StubServer());
    const row = form.addSecret();
    const node = row.name.closest<HTMLElement>('.lepton-job-secret')!;
    const message = q(node, '.lepton-job-secret-error');
    expect(message.hidden).toBe(true);
    type(row.name, '1TOKEN');
    expect(message.hidden).toBe(false);
    expect(message.textContent).toMatch(/environment variable name/);
    expect(row.name.getAttribute('aria-invalid')).toBe('true');
    type(row.name, 'TOKEN');
    expect(message.hidden).toBe(true);
    expect(row.name.hasAttribute('aria-invalid')).toBe(false);
    // a second row of the same name: both fine alone, the second is a duplicate
    const second = form.addSecret();
    type(second.name, 'TOKEN');
    const secondMessage = q(
      second.name.closest<HTMLElement>('.lepton-job-secret')!,
      '.lepton-job-secret-error'
    );
    expect(secondMessage.textContent).toBe('This name is given twice');
    expect(message.hidden).toBe(true);
    form.dispose();
    models.dispose();
  });

  it('refuses a bad name on submit without a request, and keeps the rows', async () => {
    const server = new StubServer().on('POST jobs', { status: 201, body: JOB });
    const { form, models } = makeForm(server);
    const row = form.addSecret();
    type(row.value, VALUE); // a value, no name
    expect(await form.submit()).toBe(false);
    const error = q(form.node, '.lepton-job-form-error');
    expect(error.hidden).toBe(false);
    expect(error.textContent).toBe('Secret 1: A secret needs a name');
    const message = q(form.node, '.lepton-job-secret .lepton-job-secret-error');
    expect(message.hidden).toBe(false);
    expect(server.calls('POST jobs')).toHaveLength(0);
    expect(row.value.value).toBe(VALUE);
    // the form's message goes once the rows read well
    type(row.name, 'API-TOKEN');
    expect(error.hidden).toBe(false);
    type(row.name, 'API_TOKEN');
    expect(error.hidden).toBe(true);
    expect(message.hidden).toBe(true);
    form.dispose();
    models.dispose();
  });

  it('sends the secrets once, in the body, then forgets the values', async () => {
    const server = new StubServer().on('POST jobs', { status: 201, body: JOB });
    const logs = spyConsole();
    const { form, models } = makeForm(server);
    const first = form.addSecret();
    type(first.name, 'API_TOKEN');
    type(first.value, VALUE);
    const second = form.addSecret();
    type(second.name, 'DB_PASSWORD');
    type(second.value, OTHER);
    form.addSecret(); // a blank row is skipped
    expect(await form.submit()).toBe(true);

    const calls = server.calls('POST jobs');
    expect(calls).toHaveLength(1);
    expect((calls[0].body as Record<string, unknown>).secrets).toEqual({
      API_TOKEN: VALUE,
      DB_PASSWORD: OTHER
    });
    // never in a URL: no request's path or query holds a value
    for (const request of server.requests) {
      expect(request.path).not.toContain(VALUE);
      expect(decodeURIComponent(request.path)).not.toContain(OTHER);
    }
    // forgotten: no rows, the inputs emptied, nothing in the form's HTML
    expect(form.secretRows).toHaveLength(0);
    expect(form.node.querySelectorAll('.lepton-job-secret')).toHaveLength(0);
    expect(first.value.value).toBe('');
    expect(second.value.value).toBe('');
    expect(form.node.outerHTML).not.toContain(VALUE);
    // what the dialog resolves with is the server's view: names only
    expect(JSON.stringify(form.getValue())).not.toContain(VALUE);
    expect(logs.text()).not.toContain(VALUE);
    expect(logs.text()).not.toContain(OTHER);
    logs.restore();
    form.dispose();
    models.dispose();
  });

  it('keeps the rows when the server refuses, and the message has no value', async () => {
    const server = new StubServer().on('POST jobs', {
      status: 400,
      body: { message: "secrets.API_TOKEN: too long (input '**********')" }
    });
    const logs = spyConsole();
    const { form, models } = makeForm(server);
    const row = form.addSecret();
    type(row.name, 'API_TOKEN');
    type(row.value, VALUE);
    expect(await form.submit()).toBe(false);
    const error = q(form.node, '.lepton-job-form-error');
    expect(error.textContent).toContain('HTTP 400');
    expect(error.textContent).not.toContain(VALUE);
    // the user corrects and sends again: the value is still there
    expect(row.value.value).toBe(VALUE);
    expect(form.secretRows).toHaveLength(1);
    expect(logs.text()).not.toContain(VALUE);
    logs.restore();
    form.dispose();
    models.dispose();
  });

  it('sends secrets with a schedule too', async () => {
    const server = new StubServer().on('POST schedules', {
      status: 201,
      body: {
        id: 's1',
        name: 'params.ipynb',
        cron: '0 6 * * *',
        timezone: 'UTC',
        active: true,
        secret_names: ['API_TOKEN']
      }
    });
    const { form, models } = makeForm(server, true);
    q<HTMLInputElement>(form.node, 'input.lepton-job-cron').value = '0 6 * * *';
    const row = form.addSecret();
    type(row.name, 'API_TOKEN');
    type(row.value, VALUE);
    expect(await form.submit()).toBe(true);
    const calls = server.calls('POST schedules');
    expect(calls).toHaveLength(1);
    expect((calls[0].body as Record<string, unknown>).secrets).toEqual({
      API_TOKEN: VALUE
    });
    expect(form.secretRows).toHaveLength(0);
    form.dispose();
    models.dispose();
  });

  it('forgets the values when the dialog goes without submitting', () => {
    const { form, models } = makeForm(new StubServer());
    const row = form.addSecret();
    type(row.name, 'API_TOKEN');
    type(row.value, VALUE);
    form.dispose();
    expect(row.value.value).toBe('');
    models.dispose();
  });
});

describe('secret names in the sidebar', () => {
  it('reads "Secrets: A, B", and nothing for none', () => {
    expect(secretNamesText(['API_TOKEN', 'DB_PASSWORD'])).toBe(
      'Secrets: API_TOKEN, DB_PASSWORD'
    );
    expect(secretNamesText([])).toBe('');
    expect(secretNamesText(undefined)).toBe('');
  });

  it('a job row shows its secret names, hidden when it has none', async () => {
    const job = {
      ...JOB,
      status: 'completed',
      attempt: 1,
      secret_names: ['API_TOKEN', 'DB_PASSWORD']
    };
    const server = new StubServer().on('GET jobs?limit=10', {
      body: {
        jobs: [
          job,
          { ...job, id: 'j0', secret_names: [] },
          { ...job, id: 'jx', secret_names: undefined }
        ]
      }
    });
    const lepton = new LeptonModels({ client: server.client() });
    const section = new JobsSection({
      model: lepton.jobs,
      openLog: () => undefined
    });
    Widget.attach(section, document.body);
    await lepton.jobs.refresh();
    await until(
      () => !!section.node.querySelector("li.lepton-job[data-lepton-job='j1']")
    );
    const row = q(section.node, "li.lepton-job[data-lepton-job='j1']");
    const names = q(row, '.lepton-job-secrets');
    expect(names.hidden).toBe(false);
    expect(names.textContent).toBe('Secrets: API_TOKEN, DB_PASSWORD');
    for (const id of ['j0', 'jx']) {
      const other = q(section.node, `li.lepton-job[data-lepton-job='${id}']`);
      expect(q(other, '.lepton-job-secrets').hidden).toBe(true);
    }
    // names change with the job
    server.on('GET jobs?limit=10', {
      body: { jobs: [{ ...job, secret_names: [] }] }
    });
    await lepton.jobs.refresh();
    await until(() => names.hidden);
    expect(names.hidden).toBe(true);
    section.dispose();
    lepton.dispose();
  });

  it('a schedule row shows its secret names', async () => {
    const schedule = {
      id: 's1',
      name: 'params.ipynb',
      path: 'params.ipynb',
      cron: '0 6 * * *',
      timezone: 'UTC',
      active: true,
      parameters: {},
      next_fire_at: 2000000000,
      secret_names: ['API_TOKEN']
    };
    const server = new StubServer().on('GET schedules', {
      body: {
        schedules: [schedule, { ...schedule, id: 's0', secret_names: [] }]
      }
    });
    const lepton = new LeptonModels({ client: server.client() });
    const section = new SchedulesSection(lepton.schedules);
    Widget.attach(section, document.body);
    await lepton.schedules.refresh();
    await until(
      () =>
        !!section.node.querySelector(
          "li.lepton-schedule[data-lepton-schedule='s1']"
        )
    );
    const row = q(
      section.node,
      "li.lepton-schedule[data-lepton-schedule='s1']"
    );
    expect(q(row, '.lepton-schedule-secrets').textContent).toBe(
      'Secrets: API_TOKEN'
    );
    expect(q(row, '.lepton-schedule-secrets').hidden).toBe(false);
    const other = q(
      section.node,
      "li.lepton-schedule[data-lepton-schedule='s0']"
    );
    expect(q(other, '.lepton-schedule-secrets').hidden).toBe(true);
    section.dispose();
    lepton.dispose();
  });
});
