/**
 * The stand-in org.freedesktop.login1 (and NetworkManager's StateChanged) that the desktop tests
 * drive. It is written in Python with dbus-python (Debian's python3-dbus and python3-gi, on the
 * image) rather than dbus-next because logind's `Inhibit` returns a file descriptor, and
 * dbus-next passes descriptors only through its optional native `usocket` module, which does
 * not build on Node.js 24 without downloading headers. dbus-python passes them natively, so the
 * stand-in hands out a real pipe and sees, like logind, when the holder closes it.
 */
export const FAKE_LOGIN1_PY = String.raw`
import os, sys, signal
import dbus, dbus.service, dbus.mainloop.glib
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
M = 'org.freedesktop.login1.Manager'
S = 'org.freedesktop.login1.Session'
U = 'org.freedesktop.login1.User'
P = 'org.freedesktop.DBus.Properties'
T = 'dev.tandem.Test.Login1'
BASE = '/org/freedesktop/login1'

def esc(s):
    return ''.join(c if c.isalnum() else '_%02x' % ord(c) for c in s)

class Session(dbus.service.Object):
    def __init__(self, sid, uid, name, klass):
        self.path = BASE + '/session/' + esc(sid)
        dbus.service.Object.__init__(self, bus, self.path)
        self.props = {'Id': dbus.String(sid), 'Name': dbus.String(name), 'Class': dbus.String(klass),
                      'Type': dbus.String('x11'), 'State': dbus.String('active'), 'Active': dbus.Boolean(True),
                      'IdleHint': dbus.Boolean(False),
                      'User': dbus.Struct((dbus.UInt32(uid), dbus.ObjectPath(BASE + '/user/_' + str(uid))), signature='uo')}
    @dbus.service.method(P, in_signature='ss', out_signature='v')
    def Get(self, iface, name):
        return self.props[name]
    @dbus.service.method(P, in_signature='s', out_signature='a{sv}')
    def GetAll(self, iface):
        return self.props
    @dbus.service.signal(P, signature='sa{sv}as')
    def PropertiesChanged(self, iface, changed, invalidated):
        pass
    @dbus.service.method(S, in_signature='', out_signature='')
    def Lock(self):
        pass
    def set(self, name, value):
        self.props[name] = value
        self.PropertiesChanged(S, {name: value}, dbus.Array([], signature='s'))

class User(dbus.service.Object):
    def __init__(self, uid):
        self.uid = uid
        dbus.service.Object.__init__(self, bus, BASE + '/user/_' + str(uid))
    def sessions(self):
        return [s for s in sessions.values() if int(s.props['User'][0]) == self.uid]
    def value(self, name):
        mine = self.sessions()
        if name == 'Display':
            if mine:
                return dbus.Struct((mine[0].props['Id'], dbus.ObjectPath(mine[0].path)), signature='so')
            return dbus.Struct(('', dbus.ObjectPath('/')), signature='so')
        if name == 'Sessions':
            return dbus.Array([dbus.Struct((s.props['Id'], dbus.ObjectPath(s.path)), signature='so') for s in mine], signature='(so)')
        if name == 'UID':
            return dbus.UInt32(self.uid)
        raise dbus.exceptions.DBusException('no property ' + name)
    @dbus.service.method(P, in_signature='ss', out_signature='v')
    def Get(self, iface, name):
        return self.value(name)
    @dbus.service.method(P, in_signature='s', out_signature='a{sv}')
    def GetAll(self, iface):
        return {n: self.value(n) for n in ('Display', 'Sessions', 'UID')}
    @dbus.service.method(U, in_signature='', out_signature='')
    def Kill(self):
        pass

sessions = {}
users = {}
inhibitors = []

class Manager(dbus.service.Object):
    def __init__(self):
        dbus.service.Object.__init__(self, bus, BASE)
    @dbus.service.method(M, in_signature='ssss', out_signature='h', sender_keyword='sender')
    def Inhibit(self, what, who, why, mode, sender=None):
        r, w = os.pipe()
        d = bus.get_object('org.freedesktop.DBus', '/org/freedesktop/DBus')
        pid = int(d.GetConnectionUnixProcessID(sender, dbus_interface='org.freedesktop.DBus'))
        uid = int(d.GetConnectionUnixUser(sender, dbus_interface='org.freedesktop.DBus'))
        entry = {'what': what, 'who': who, 'why': why, 'mode': mode, 'uid': uid, 'pid': pid, 'held': True}
        inhibitors.append(entry)
        def closed(fd, cond):
            entry['held'] = False
            os.close(fd)
            return False
        GLib.io_add_watch(r, GLib.IO_HUP | GLib.IO_ERR, closed)
        fd = dbus.types.UnixFd(w)
        os.close(w)
        return fd
    @dbus.service.method(M, in_signature='', out_signature='a(ssssuu)')
    def ListInhibitors(self):
        return dbus.Array([(i['what'], i['who'], i['why'], i['mode'], dbus.UInt32(i['uid']), dbus.UInt32(i['pid']))
                           for i in inhibitors if i['held']], signature='(ssssuu)')
    @dbus.service.method(M, in_signature='s', out_signature='o')
    def GetSession(self, sid):
        if sid not in sessions:
            raise dbus.exceptions.DBusException('No session ' + sid, name='org.freedesktop.login1.NoSuchSession')
        return dbus.ObjectPath(sessions[sid].path)
    @dbus.service.method(M, in_signature='u', out_signature='o')
    def GetUser(self, uid):
        if int(uid) not in users:
            raise dbus.exceptions.DBusException('No user ' + str(uid), name='org.freedesktop.login1.NoSuchUser')
        return dbus.ObjectPath(BASE + '/user/_' + str(int(uid)))
    @dbus.service.method(M, in_signature='', out_signature='a(susso)')
    def ListSessions(self):
        return dbus.Array([(s.props['Id'], s.props['User'][0], s.props['Name'], '', dbus.ObjectPath(s.path))
                           for s in sessions.values()], signature='(susso)')
    @dbus.service.signal(M, signature='b')
    def PrepareForSleep(self, start):
        pass
    @dbus.service.signal(M, signature='so')
    def SessionNew(self, sid, path):
        pass
    @dbus.service.signal(M, signature='so')
    def SessionRemoved(self, sid, path):
        pass

class Network(dbus.service.Object):
    def __init__(self):
        dbus.service.Object.__init__(self, bus, '/org/freedesktop/NetworkManager')
    @dbus.service.signal('org.freedesktop.NetworkManager', signature='u')
    def StateChanged(self, state):
        pass
    @dbus.service.method('org.freedesktop.NetworkManager', in_signature='', out_signature='u')
    def state(self):
        return dbus.UInt32(70)

manager = Manager()
network = Network()
loop = GLib.MainLoop()

class Control(dbus.service.Object):
    def __init__(self):
        dbus.service.Object.__init__(self, bus, '/dev/tandem/test')
    @dbus.service.method(T, in_signature='suss', out_signature='o')
    def AddSession(self, sid, uid, name, klass):
        s = Session(sid, int(uid), name, klass)
        sessions[sid] = s
        if int(uid) not in users:
            users[int(uid)] = User(int(uid))
        manager.SessionNew(sid, dbus.ObjectPath(s.path))
        return dbus.ObjectPath(s.path)
    @dbus.service.method(T, in_signature='s', out_signature='')
    def RemoveSession(self, sid):
        s = sessions.pop(sid)
        s.remove_from_connection()
        manager.SessionRemoved(sid, dbus.ObjectPath(s.path))
    @dbus.service.method(T, in_signature='sb', out_signature='')
    def SetIdleHint(self, sid, idle):
        sessions[sid].set('IdleHint', dbus.Boolean(idle))
    @dbus.service.method(T, in_signature='ss', out_signature='')
    def SetState(self, sid, state):
        sessions[sid].set('State', dbus.String(state))
    @dbus.service.method(T, in_signature='b', out_signature='')
    def EmitPrepareForSleep(self, start):
        manager.PrepareForSleep(start)
    @dbus.service.method(T, in_signature='u', out_signature='')
    def EmitNetworkState(self, state):
        network.StateChanged(dbus.UInt32(state))
    @dbus.service.method(T, in_signature='', out_signature='a(ssssuub)')
    def Inhibitors(self):
        return dbus.Array([(i['what'], i['who'], i['why'], i['mode'], dbus.UInt32(i['uid']), dbus.UInt32(i['pid']), dbus.Boolean(i['held']))
                           for i in inhibitors], signature='(ssssuub)')
    @dbus.service.method(T, in_signature='', out_signature='')
    def Quit(self):
        GLib.idle_add(loop.quit)

control = Control()
bus.request_name('org.freedesktop.login1')
bus.request_name('org.freedesktop.NetworkManager')
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
print('ready', flush=True)
loop.run()
`;
