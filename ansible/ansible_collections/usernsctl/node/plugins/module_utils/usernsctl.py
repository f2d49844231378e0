# -*- coding: utf-8 -*-
# Shared code of the usernsctl.node modules: find the usernsctl binary, run one
# command with --output json, read the one JSON object it prints, and turn it
# into an Ansible result (changed, diff, warnings, a readable msg on failure).
#
# The contract (docs/apply.md "Output contract"): every command prints exactly one
# JSON object on stdout with schema, version, failed, changed and msg; exit 0
# success, 1 a check failed or a change was refused or failed, 2 usage error or
# bad input. Older binaries print check and verify reports without failed/msg and
# report usage errors on stderr alone: everything here copes with both, and with
# no JSON at all (a crash, a missing binary), without a traceback.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

SCHEMAS = {
    'check': 'usernsctl.check/v1',
    'apply': 'usernsctl.apply/v1',
    'revert': 'usernsctl.revert/v1',
    'verify': 'usernsctl.verify/v1',
}

# Keys of an apply/revert object that the modules return as they are.
CHANGE_KEYS = ('schema', 'version', 'target', 'changes', 'live', 'notes', 'restart_required',
               'restarted', 'dry_run', 'blocking', 'fix')
# Keys of a check/verify report that the modules return as they are.
REPORT_KEYS = ('schema', 'version', 'target', 'target_source', 'kernel', 'ready', 'verified',
               'checks', 'summary', 'fix')

# How much of a stream goes into a message when the tool printed no JSON.
EXCERPT = 2000

# Files whose second field is a password hash: never copied into a diff or a log.
SHADOW_FILES = ('/etc/shadow', '/etc/gshadow', '/etc/shadow-', '/etc/gshadow-')


def find_binary(module):
    """The usernsctl to run: the binary option, else usernsctl on PATH (and the sbin
    directories). Fails the module with a message saying what to do when there is none."""
    path = module.params.get('binary')
    if path:
        if not os.path.exists(path):
            module.fail_json(msg='usernsctl binary %s does not exist (option binary): install usernsctl '
                             'there or point binary at it' % path, rc=None)
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            module.fail_json(msg='usernsctl binary %s is not an executable file (option binary)' % path, rc=None)
        return path
    found = module.get_bin_path('usernsctl')
    if not found:
        module.fail_json(msg='usernsctl is not installed on this host: it is not on PATH (%s) nor in /sbin, '
                         '/usr/sbin, /usr/local/sbin; copy the static binary to the node (for example '
                         '/usr/local/sbin/usernsctl, as the usernsctl.node.userns role does with '
                         'usernsctl_binary_src) or set the binary option'
                         % os.environ.get('PATH', ''), rc=None)
    return found


def duration(value):
    """A Go duration for --restart-timeout and --probe-timeout: a bare number is seconds."""
    if value is None:
        return None
    value = str(value).strip()
    if re.match(r'^[0-9]+$', value):
        return value + 's'
    return value


def restart_args(params):
    """--restart, --restart-command and --restart-timeout of apply and revert."""
    args = []
    if params.get('restart'):
        args.append('--restart')
    if params.get('restart_command'):
        args.append('--restart-command=' + params['restart_command'])
    if params.get('restart_timeout'):
        args.append('--restart-timeout=' + duration(params['restart_timeout']))
    return args


def mode(module, name):
    """auto, on or off for --slow-chown and --metacopy. YAML 1.1 reads a bare on/off as a
    boolean, which Ansible then hands over as 'True'/'False': both mean what they say."""
    value = module.params.get(name)
    if value is None:
        return None
    v = str(value).strip().lower()
    if v in ('on', 'true', 'yes', '1'):
        return 'on'
    if v in ('off', 'false', 'no', '0'):
        return 'off'
    if v == 'auto':
        return 'auto'
    module.fail_json(msg='%s: %r: want auto, on or off' % (name, value), rc=None)


def parse_object(text):
    """The one JSON object on stdout, or (None, why). A line of other text before the
    object (a wrapper's banner) is tolerated; anything that is not an object is not."""
    text = (text or '').strip()
    if not text:
        return None, 'printed nothing on stdout'
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
        dec = json.JSONDecoder()
        for m in re.finditer(r'(?m)^\{', text):
            try:
                obj, end = dec.raw_decode(text, m.start())
            except ValueError:
                continue
            if text[end:].strip():
                obj = None
            break
        if obj is None:
            return None, 'printed no JSON object on stdout'
    if not isinstance(obj, dict):
        return None, 'printed JSON that is not an object on stdout'
    return obj, None


# The types of the contract's fields, where they appear.
FIELD_TYPES = (
    (('changed', 'failed', 'ready', 'verified', 'restart_required', 'restarted', 'dry_run'), bool, 'true or false'),
    (('changes', 'live', 'notes', 'checks', 'blocking'), list, 'a list'),
    (('summary',), dict, 'an object'),
)
STRING_FIELDS = ('schema', 'version', 'msg', 'fix', 'target')


def contract_error(obj):
    """Why obj does not keep the contract's field types, or None."""
    for keys, kind, want in FIELD_TYPES:
        for k in keys:
            if k in obj and obj[k] is not None and not isinstance(obj[k], kind):
                return 'printed an object whose %s is %s, not %s' % (k, json.dumps(obj[k])[:80], want)
    for k in STRING_FIELDS:
        if k in obj and obj[k] is not None and not isinstance(obj[k], type(u'')) and not isinstance(obj[k], str):
            return 'printed an object whose %s is %s, not a string' % (k, json.dumps(obj[k])[:80])
    for k in ('changes', 'live', 'checks', 'blocking'):
        if any(not isinstance(e, dict) for e in obj.get(k) or []):
            return 'printed an object whose %s holds something other than objects' % k
    return None


def excerpt(text):
    text = (text or '').strip()
    if len(text) > EXCERPT:
        return text[:EXCERPT] + ' [... %d more characters]' % (len(text) - EXCERPT)
    return text


def redact_shadow(path, diff):
    """Password hashes out of a diff of /etc/shadow or /etc/gshadow (context lines show
    other accounts' lines): the second field keeps its lock prefix, the hash becomes
    ********. usernsctl itself masks them as <hash hidden>; this is the belt for older
    binaries. Other files are returned as they are."""
    if not diff or path not in SHADOW_FILES:
        return diff
    out = []
    for line in diff.splitlines(True):
        if line.startswith(('---', '+++', '@@')) or line[:1] not in (' ', '+', '-'):
            out.append(line)
            continue
        fields = line[1:].split(':')
        if len(fields) >= 2:
            prefix = re.match(r'^[!*]*', fields[1]).group(0)
            if fields[1][len(prefix):].strip() and fields[1] != '<hash hidden>':
                fields[1] = prefix + '********'
        out.append(line[0] + ':'.join(fields))
    return ''.join(out)


def live_diff(live):
    """A unified diff of one live setting (sysctl, /sys module parameter) for --diff."""
    path = live.get('path', '?')
    before = live.get('before', '')
    after = live.get('value', '')
    why = live.get('why')
    header = '--- %s (live)\n+++ %s (live%s)\n' % (path, path, ': ' + why if why else '')
    return header + '@@ -1 +1 @@\n-%s\n+%s\n' % (before, after)


def diff_list(obj):
    """Ansible's diff for apply and revert: one prepared unified diff per changed file and
    live setting, in the tool's order; ansible-playbook --diff prints them as they are."""
    out = []
    for c in obj.get('changes') or []:
        if not isinstance(c, dict):
            continue
        text = c.get('diff') or ''
        if not text:
            text = '--- %s\n+++ %s\n(%s, no diff given)\n' % (c.get('path', '?'), c.get('path', '?'), c.get('action', 'changed'))
        if not text.endswith('\n'):
            text += '\n'
        out.append({'prepared': text})
    for lv in obj.get('live') or []:
        if isinstance(lv, dict):
            out.append({'prepared': live_diff(lv)})
    return out


def check_lines(checks, statuses):
    """One readable entry per check whose status is in statuses: id, status, message and
    remedy, as the tool states them."""
    lines = []
    for c in checks or []:
        if not isinstance(c, dict) or c.get('status') not in statuses:
            continue
        title = ' (%s)' % c['title'] if c.get('title') else ''
        lines.append('- %s%s [%s]: %s' % (c.get('id', '?'), title, c.get('status'), c.get('message', '')))
        if c.get('remedy'):
            lines.append('  remedy: %s' % c['remedy'])
    return lines


class Runner(object):
    """One usernsctl command for one module: verb is check, apply, revert or verify."""

    def __init__(self, module, verb):
        self.module = module
        module._usernsctl_runner = self
        self.verb = verb
        self.schema = SCHEMAS[verb]
        self.binary = find_binary(module)
        self.cmd = None
        self.rc = None
        self.stdout = ''
        self.stderr = ''

    def run(self, args):
        """Runs usernsctl VERB ARGS --output json; returns (object or None, why)."""
        self.cmd = [self.binary, self.verb] + list(args) + ['--output', 'json']
        try:
            # expand_user_and_vars=False: a restart command's $VAR is for the shell
            # usernsctl starts, not for this module.
            self.rc, self.stdout, self.stderr = self.module.run_command(
                self.cmd, expand_user_and_vars=False, handle_exceptions=False,
                environ_update={'NO_COLOR': '1'})
        except (OSError, IOError) as e:
            self.module.fail_json(msg='could not run %s: %s' % (self.binary, e), cmd=self.cmd, rc=None)
        obj, why = parse_object(self.stdout)
        if obj is not None:
            schema = obj.get('schema')
            if schema is not None and schema != self.schema:
                return None, 'printed a %r object, not %s (a usernsctl this collection does not know?)' % (schema, self.schema)
            bad = contract_error(obj)
            if bad:
                return None, bad
        return obj, why

    def base(self):
        """What every result carries: the command line, the exit code, stderr when there is one."""
        res = {'cmd': self.cmd, 'rc': self.rc}
        if (self.stderr or '').strip():
            res['stderr'] = self.stderr
        return res

    def fail_without_json(self, why):
        """The tool printed no usable object: say what happened from rc, stderr and stdout."""
        msg = 'usernsctl %s exited %s and %s' % (self.verb, self.rc, why)
        err = excerpt(self.stderr)
        out = excerpt(self.stdout)
        if err:
            msg += ': ' + err
        if out:
            msg += '\nstdout: ' + out
        if self.rc == 0:
            msg += ('\n(this collection needs `usernsctl %s --output json` to print one %s object)'
                    % (self.verb, self.schema))
        res = self.base()
        res.update(stdout=self.stdout, stderr=self.stderr)
        self.module.fail_json(msg=msg, **res)

    def failure_msg(self, obj, default, checks_statuses=()):
        """The tool's own msg, then its blocking (or failing) checks with their remedies,
        then its fix: one line each, readable in ansible-playbook's output."""
        head = obj.get('msg') or default
        lines = ['usernsctl %s (exit %s): %s' % (self.verb, self.rc, head)]
        blocking = obj.get('blocking') or []
        if blocking:
            lines.extend(check_lines(blocking, ('fail', 'warn', 'skip', 'pass')))
        elif checks_statuses:
            lines.extend(check_lines(obj.get('checks'), checks_statuses))
        if obj.get('fix'):
            lines.append('fix: %s' % obj['fix'])
        err = excerpt(self.stderr)
        if err and err not in head:
            lines.append('stderr: %s' % err)
        return '\n'.join(lines)

    def warn_checks(self, obj):
        """Each warning of a check or verify report as an Ansible warning."""
        for c in obj.get('checks') or []:
            if not isinstance(c, dict) or c.get('status') != 'warn':
                continue
            text = 'usernsctl %s %s: %s' % (self.verb, c.get('id', '?'), c.get('message', ''))
            if c.get('ignored'):
                text += ' (a failure, ignored)'
            if c.get('remedy'):
                text += '; remedy: %s' % c['remedy']
            self.module.warn(text)


def summary_of(checks):
    counts = {'pass': 0, 'warn': 0, 'fail': 0, 'skip': 0}
    for c in checks or []:
        if isinstance(c, dict) and c.get('status') in counts:
            counts[c['status']] += 1
    return counts


def change_result(runner, obj, check_mode):
    """apply and revert: the Ansible result of a parsed object (failed or not)."""
    res = runner.base()
    for k in CHANGE_KEYS:
        if k in obj:
            res[k] = obj[k]
    changes = []
    for c in obj.get('changes') or []:
        if isinstance(c, dict) and c.get('diff'):
            c = dict(c, diff=redact_shadow(c.get('path'), c['diff']))
        changes.append(c)
    res['changes'] = changes
    res.setdefault('live', [])
    res.setdefault('notes', [])
    res['restart_required'] = bool(obj.get('restart_required'))
    res['restarted'] = bool(obj.get('restarted'))
    if check_mode:
        res['dry_run'] = True
    res['changed'] = bool(obj.get('changed'))
    res['msg'] = obj.get('msg') or ''
    if runner.module._diff and res['changed']:
        res['diff'] = diff_list(dict(obj, changes=changes))
    return res


def guarded(fn):
    """An object that breaks the contract in a way nothing here foresaw (a list where a
    string belongs) fails the task with what usernsctl printed, never with a traceback."""
    def run(module, verb, *args, **kwargs):
        try:
            return fn(module, verb, *args, **kwargs)
        except Exception as e:  # pylint: disable=broad-except
            runner = getattr(module, '_usernsctl_runner', None)
            res = runner.base() if runner else {}
            if runner:
                res.update(stdout=runner.stdout, stderr=runner.stderr)
            module.fail_json(msg='usernsctl %s printed an object this module cannot read (%s: %s): see stdout'
                             % (verb, type(e).__name__, e), **res)
    return run


@guarded
def run_change(module, verb, args):
    """apply or revert: run, then exit_json or fail_json. Check mode adds --dry-run."""
    runner = Runner(module, verb)
    if module.check_mode:
        args = list(args) + ['--dry-run']
    obj, why = runner.run(args)
    if module.check_mode and verb == 'revert' and runner.rc == 2:
        said = (runner.stderr or '') + ((obj or {}).get('msg') or '')
        if 'unknown flag: --dry-run' in said:
            predict_revert(module, runner)
    if obj is None:
        runner.fail_without_json(why)
    res = change_result(runner, obj, module.check_mode)
    failed = bool(obj.get('failed')) or runner.rc != 0
    if failed:
        default = 'failed' if runner.rc != 0 else 'reported failed with exit code 0'
        res['msg'] = runner.failure_msg(obj, default)
        # Nothing was changed: empty lists only bury the message in the output.
        for k in ('changes', 'live', 'notes'):
            if not res.get(k):
                res.pop(k, None)
        module.fail_json(**res)
    if res['restart_required'] and not res['restarted'] and not module.check_mode and not module.params.get('root'):
        module.warn('usernsctl %s: the change takes effect when the daemons restart (restart: true '
                    'restarts them and rolls back if they do not come back)' % verb)
    module.exit_json(**res)


def predict_revert(module, runner):
    """Check mode against a usernsctl without `revert --dry-run`: predict from the state
    usernsctl keeps (/var/lib/usernsctl under root) whether a revert would change
    anything. No diffs: the real revert shows them."""
    root = module.params.get('root') or '/'
    state = os.path.join(root, 'var/lib/usernsctl')
    pending = os.path.exists(os.path.join(state, 'applied.json'))
    backups = os.path.join(state, 'backups')
    if not pending and os.path.isdir(backups):
        pending = any(os.path.isdir(os.path.join(backups, e)) for e in os.listdir(backups))
    module.warn('%s has no `revert --dry-run`: check mode predicted the revert from %s, '
                'without diffs' % (runner.binary, state))
    # No rc: a non-zero one (the refused --dry-run) would fail the task.
    res = dict(changed=pending, dry_run=True, predicted=True, changes=[], live=[], notes=[],
               restart_required=False, restarted=False,
               msg=('would revert what usernsctl apply recorded in %s' % state) if pending
               else 'nothing to revert: no usernsctl apply is recorded')
    module.exit_json(**res)


@guarded
def run_report(module, verb, args, warnings=True):
    """check or verify: run, return the report; failed when not ready / not verified."""
    runner = Runner(module, verb)
    obj, why = runner.run(args)
    if obj is None or 'checks' not in obj and not obj.get('failed'):
        runner.fail_without_json(why or 'printed an object without checks')
    res = runner.base()
    for k in REPORT_KEYS:
        if k in obj:
            res[k] = obj[k]
    res.setdefault('checks', [])
    if 'summary' not in res:
        res['summary'] = summary_of(res['checks'])
    ok = obj.get('verified', obj.get('ready')) if verb == 'verify' else obj.get('ready')
    if ok is None:
        ok = not obj.get('failed') and runner.rc == 0
    ok = bool(ok) and not obj.get('failed') and runner.rc == 0
    if verb == 'verify':
        res['verified'] = ok
    res['ready'] = bool(obj.get('ready', ok))
    res['changed'] = False
    s = res['summary']
    counts = '%s pass, %s warn, %s fail, %s skip' % (s.get('pass', 0), s.get('warn', 0), s.get('fail', 0), s.get('skip', 0))
    word = 'verified' if verb == 'verify' else 'ready'
    target = res.get('target') or 'the detected target'
    if warnings:
        runner.warn_checks(obj)
    if ok:
        res['msg'] = obj.get('msg') or '%s for %s: %s' % (word, target, counts)
        module.exit_json(**res)
    statuses = ('fail',)
    if module.params.get('strict') and not s.get('fail'):
        statuses = ('fail', 'warn')
    default = 'not %s for %s: %s' % (word, target, counts)
    if statuses == ('fail', 'warn'):
        default += ' (strict: warnings count as failures)'
    res['msg'] = runner.failure_msg(obj, default, statuses)
    module.fail_json(**res)
